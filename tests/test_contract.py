"""The refiner's inference contract (trainer/contract.py) is the one that gen refine,
evaluation and training use: one depth-space constant, one normalisation, one merge."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from composer import ops  # noqa: E402
from composer.depth_space import DEPTH_SCALE  # noqa: E402
from trainer import contract  # noqa: E402
from trainer.infer import from_model_space, refine, to_model_space  # noqa: E402
from trainer.model import RefinerConfig, build_refiner  # noqa: E402


def test_one_depth_space():
    assert DEPTH_SCALE == 10.0 and ops.DEPTH_SCALE is DEPTH_SCALE
    assert RefinerConfig().max_depth == DEPTH_SCALE
    # 1 m or nearer -> DEPTH_SCALE, 4 m -> a quarter of it, sky -> 0.
    np.testing.assert_array_equal(ops.to_inverse(np.array([0.5, 1.0, 4.0, np.inf])), [10, 10, 2.5, 0])
    x, top = to_model_space(np.array([[2.0, 4.0], [8.0, 0.0]]), "depth")
    np.testing.assert_allclose(x, [[10, 5], [2.5, 0]])
    assert top == 0.5
    np.testing.assert_allclose(from_model_space(x, top, "depth"), [[2, 4], [8, 0]])


def test_gen_refine_is_the_two_pass_contract():
    torch.manual_seed(0)
    model = build_refiner("tiny", residual=False).eval()
    rng = np.random.default_rng(0)
    depth = rng.uniform(0, 10, (24, 40)).astype(np.float32)
    mask = np.zeros((24, 40), np.float32)
    mask[5:18, 8:30] = 1
    rgb = rng.integers(0, 256, (24, 40, 3), np.uint8)
    # Hand-written contract: ImageNet statistics, passes with M and 1-M, M*D1 + (1-M)*D2.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    r = torch.from_numpy(((rgb / 255.0 - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
    d = torch.from_numpy(depth)[None, None]
    m = torch.from_numpy(mask)[None, None]
    with torch.no_grad():
        d1 = model(d, m, r)[0, 0].numpy()
        d2 = model(d, 1 - m, r)[0, 0].numpy()
        one = model(d, m, r)[0, 0].numpy()
    expected = mask * d1 + (1 - mask) * d2
    np.testing.assert_allclose(refine(model, "layered", depth, mask, rgb), expected, atol=1e-5)
    np.testing.assert_allclose(refine(model, "direct", depth, mask, rgb), one, atol=1e-5)
    with torch.no_grad():
        _, _, merged = contract.layered_forward(model, d, m, r)
    np.testing.assert_allclose(merged[0, 0].numpy(), expected, atol=1e-5)
