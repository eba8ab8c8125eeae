"""Shared fixtures."""
import pytest


@pytest.fixture(scope="session")
def fixture_scenes(tmp_path_factory) -> str:
    """URL of a six-scene analytic scene store (96x64, no Blender needed): tests/fixture_store.py."""
    from tests.fixture_store import make_scene_store
    url = str(tmp_path_factory.mktemp("fixture") / "scenes.zarr")
    make_scene_store(url, n=6, width=96, height=64, seed=0)
    return url


@pytest.fixture
def loopback_s3(monkeypatch):
    """An S3 server (moto) on 127.0.0.1 and a boto3 client for it; fsspec and its workers
    are pointed at it.  Yields the client; the endpoint is ``client.meta.endpoint_url``."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import boto3
    import fsspec.config
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                     "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        # fsspec reads FSSPEC_* variables when first imported: workers get the variable, and
        # this already-running process its config.
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
        yield boto3.client("s3", endpoint_url=endpoint)
    finally:
        server.stop()
