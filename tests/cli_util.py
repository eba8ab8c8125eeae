"""Running ``gen`` in-process in tests, and the one-line-error contract for user mistakes."""
from click.testing import CliRunner

from pipelines.cli import cli


def gen(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(r, *words):
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    for w in words:
        assert w in lines[0], lines[0]
