import warnings

import pytest

torch = pytest.importorskip("torch")

from trainer.model import CONFIGS, build_refiner, layered_forward, param_counts  # noqa: E402


def inputs(h=64, w=64, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(b, 1, h, w, generator=g) * 10
    mask = torch.zeros(b, 1, h, w)
    mask[..., h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1
    rgb = torch.randn(b, 3, h, w, generator=g)
    return depth, mask, rgb


def untrained_head(model):
    """The residual head starts at zero (an identity refiner); give it random weights so
    the tests below see every input's effect, as in a trained model."""
    torch.nn.init.normal_(model.head.out.weight, std=0.1)
    return model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return untrained_head(build_refiner("tiny")).eval()


def test_untrained_refiner_is_the_identity():
    torch.manual_seed(0)
    d, m, r = inputs(40, 56, b=2)
    d[:, :, :5] = 0.0  # sky; the eval clamp must not move in-range values either
    with torch.no_grad():
        assert torch.equal(build_refiner("tiny").eval()(d, m, r), d)
        assert torch.equal(build_refiner("tiny").train()(d, m, r), d)
        # The paper's plain head (no residual) does not return its input.
        plain = build_refiner("tiny", residual=False).eval()(d, m, r)
    assert (plain - d).abs().mean() > 0.5


@pytest.mark.parametrize("h, w", [(70, 90), (33, 31), (64, 64)])
def test_output_shape_any_size(tiny, h, w):
    with torch.no_grad():
        out = tiny(*inputs(h, w))
    assert out.shape == (1, 1, h, w)
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 10  # eval-mode clamp


def test_channels_last_inputs(tiny):
    d, m, r = inputs(70, 90)
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (d, m, r)]
    with torch.no_grad():
        torch.testing.assert_close(tiny(*cl), tiny(d, m, r))


def test_encoder_param_counts():
    # SegFormer MiT-B3 is ~44M, MiT-B0 ~3.3M (encoder alone; 2 input channels here).
    assert 40e6 <= param_counts(build_refiner("b3"))["encoder"] <= 50e6
    for name in ("b0", "small"):
        assert 3e6 <= param_counts(build_refiner(name))["encoder"] <= 4e6
    assert param_counts(build_refiner("tiny"))["total"] < 1e6


def test_b3_matches_paper():
    c = CONFIGS["b3"]
    assert c.widths == (64, 128, 320, 512) and c.depths == (3, 4, 18, 3)
    assert c.heads == (1, 2, 5, 8) and c.sr_ratios == (8, 4, 2, 1) and c.decoder_width == 256


def test_layered_forward_merges_exactly(tiny):
    d, m, r = inputs(48, 80, b=2)
    with torch.no_grad():
        d1, d2, merged = layered_forward(tiny, d, m, r)
        # The batched 2B pass equals two separate calls.
        torch.testing.assert_close(d1, tiny(d, m, r), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(d2, tiny(d, 1 - m, r), rtol=1e-4, atol=1e-4)
    on = m.bool()
    assert torch.equal(merged[on], d1[on])
    assert torch.equal(merged[~on], d2[~on])
    assert not torch.equal(d1, d2)


def test_rgb_and_mask_matter(tiny):
    d, m, r = inputs()
    with torch.no_grad():
        base = tiny(d, m, r)
        assert (tiny(d, m, r + 1.0) - base).abs().max() > 1e-4
        assert (tiny(d, 1 - m, r) - base).abs().max() > 1e-4
        assert (tiny(d * 0.5, m, r) - base).abs().max() > 1e-4


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = untrained_head(build_refiner("tiny")).train()
    d, m, r = inputs(64, 96, b=2)
    d1, d2, merged = layered_forward(model, d, m, r)
    (d1.mean() + d2.mean() + merged.square().mean()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    zero = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert not zero, zero


def test_state_dict_round_trip(tmp_path, tiny):
    d, m, r = inputs(40, 50)
    raw, wrapped = tmp_path / "raw.pt", tmp_path / "ckpt.pt"
    torch.save(tiny.state_dict(), raw)
    torch.save({"model": tiny.state_dict(), "step": 3}, wrapped)
    with torch.no_grad():
        ref = tiny(d, m, r)
        for path in (raw, wrapped):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a clean load must not warn
                loaded = build_refiner("tiny", init=str(path)).eval()
            assert torch.equal(loaded(d, m, r), ref)


def test_partial_load_is_counted(tmp_path, tiny):
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith("head.")}
    state["extra.weight"] = torch.zeros(1)
    state["decoder.reassemble.0.weight"] = torch.zeros(3, 3, 1, 1)
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    own = [k for k in tiny.state_dict() if not k.endswith("num_batches_tracked")]
    n_head = sum(1 for k in own if k.startswith("head."))
    loaded = build_refiner("tiny", init=str(path))
    rep = loaded.init_report  # counted, for the trainer to print (trainer.init_weights)
    assert (rep.loaded, rep.target, rep.skipped) == (len(own) - n_head - 1, len(own), 2)
    assert f"loaded {len(own) - n_head - 1} of {len(own)} tensors" in rep.line(path)
    got = loaded.state_dict()
    assert torch.equal(got["encoder.stages.0.embed.proj.weight"], state["encoder.stages.0.embed.proj.weight"])
    assert got["decoder.reassemble.0.weight"].abs().sum() > 0  # the misfit stays as built, not zeros


def test_unknown_name():
    with pytest.raises(ValueError, match="tiny"):
        build_refiner("b7")


def test_deterministic_with_seed():
    d, m, r = inputs(32, 32)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        # residual=False so the (otherwise zero-initialised) output depends on every weight.
        model = build_refiner("tiny", drop_path_rate=0.2, residual=False).train()  # random forward too
        outs.append(model(d, m, r).detach())
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(124)
    assert not torch.equal(build_refiner("tiny", residual=False).train()(d, m, r).detach(), outs[0])
