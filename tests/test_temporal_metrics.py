"""dtSSD and MESSDdt (matte_sdk.evaluation.temporal) against straightforward transcriptions of their
definitions (RVM's and TCVOM's), pixel by pixel, on a fixture."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import write_exr

from matte_sdk.errors import InputError
from matte_sdk.evaluation import pairing, scoring, temporal
from matte_sdk.flow import ABSOLUTE, RELATIVE, Flow, grey8

H, W, T = 12, 14, 4


@pytest.fixture(scope="module")
def fixture():
    rng = np.random.default_rng(22)
    gts = [rng.random((H, W)).astype(np.float32) for _ in range(T)]
    preds = [np.clip(g + rng.normal(0, 0.1, g.shape), 0, 1).astype(np.float32) for g in gts]
    trimaps = [rng.choice([0.0, 0.5, 1.0], (H, W), p=[0.2, 0.6, 0.2]).astype(np.float32) for _ in range(T)]
    plates = [rng.random((H, W, 3)).astype(np.float32) for _ in range(T)]
    return preds, gts, trimaps, plates


def _dtssd_reference(preds, gts) -> float:
    """RVM: for t ≥ 1, 100 · sqrt( Σ_p [(α_t − α_{t−1}) − (α*_t − α*_{t−1})]² / N ); 0 for t = 0; mean."""
    scores = [0.0]
    for t in range(1, len(preds)):
        total = 0.0
        for y in range(H):
            for x in range(W):
                d = (float(preds[t][y, x]) - float(preds[t - 1][y, x])) - (
                    float(gts[t][y, x]) - float(gts[t - 1][y, x])
                )
                total += d * d
        scores.append(100 * math.sqrt(total / (H * W)))
    return sum(scores) / len(scores)


def _flow_stub(frames):
    """Integer flows that differ per pixel (whole-pixel moves sample exactly, so any correct
    implementation agrees with the transcription to float rounding), with an occlusion in the backward one."""

    def flow(a, b):
        i, j = frames.index(a.tobytes()), frames.index(b.tobytes())
        f = np.zeros((H, W, 2), np.float32)
        sign = 1 if j > i else -1
        f[:, : W // 2, 0] = 2 * sign  # the left half moves right by 2
        f[H // 2 :, :, 1] = -1 * sign  # the bottom half moves up by 1
        if j < i:
            f[2:5, 8:11] = (3.0, 2.0)  # backward flow that does not come back: unreliable there
        return f

    return flow


def _sample(image, x: float, y: float):
    """``image`` at an integer position, or None outside the frame."""
    if not (0 <= x <= W - 1 and 0 <= y <= H - 1):
        return None
    return image[int(y), int(x)]


def _messddt_reference(preds, gts, trimaps, flow, greys) -> float:
    """TCVOM: warp t+1's prediction and truth back to t with the forward flow; per unknown pixel with a
    valid flow |(α_t − α*_t)² − (α̂_{t+1} − α̂*_{t+1})²|; summed per frame; mean over frames."""
    scores = []
    for t in range(len(preds) - 1):
        fwd, bwd = flow(greys[t], greys[t + 1]), flow(greys[t + 1], greys[t])
        total = 0.0
        for y in range(H):
            for x in range(W):
                u, v = float(fwd[y, x, 0]), float(fwd[y, x, 1])
                back = _sample(bwd, x + u, y + v)
                if back is None or abs(float(trimaps[t][y, x]) - 0.5) > 1 / 255:
                    continue
                err = (u + back[0]) ** 2 + (v + back[1]) ** 2
                if err > RELATIVE * (u * u + v * v + back[0] ** 2 + back[1] ** 2) + ABSOLUTE:
                    continue
                later = float(_sample(preds[t + 1], x + u, y + v)) - float(_sample(gts[t + 1], x + u, y + v))
                now = float(preds[t][y, x]) - float(gts[t][y, x])
                total += abs(now * now - later * later)
        scores.append(total)
    return sum(scores) / len(scores)


def test_dtssd_matches_the_definition(fixture):
    preds, gts, _, _ = fixture
    assert temporal.dtssd(preds, gts) == pytest.approx(_dtssd_reference(preds, gts), rel=1e-5)
    assert temporal.dtssd_frames(preds, gts)[0] == 0
    assert temporal.dtssd(gts, gts) == 0
    shifted = [g + 0.25 for g in gts]  # a constant offset does not flicker
    assert temporal.dtssd(shifted, gts) == pytest.approx(0, abs=1e-4)


def test_messddt_matches_the_definition(fixture):
    preds, gts, trimaps, plates = fixture
    greys = [grey8(p) for p in plates]
    flow = _flow_stub([g.tobytes() for g in greys])
    expected = _messddt_reference(preds, gts, trimaps, flow, greys)
    assert expected > 0
    # float32 squares of values in [0, 1] summed over ≤ H·W pixels: relative rounding far below 1e-5
    assert temporal.messddt(preds, gts, trimaps, plates, flow=flow) == pytest.approx(expected, rel=1e-5)
    assert len(temporal.messddt_frames(preds, gts, trimaps, plates, flow=flow)) == T - 1


def test_messddt_with_dis_flow_is_zero_for_perfect_and_positive_for_flicker(fixture):
    preds, gts, trimaps, plates = fixture
    assert temporal.messddt(gts, gts, trimaps, plates) == 0
    assert temporal.messddt(preds, gts, trimaps, plates, flow=Flow()) > 0


def test_mismatched_sequences_are_errors(fixture):
    preds, gts, trimaps, plates = fixture
    with pytest.raises(InputError, match="4 predicted frames but 3 ground-truth frames"):
        temporal.dtssd(preds, gts[:3])
    with pytest.raises(InputError, match="4 alphas but 4 trimaps and 2 plates"):
        temporal.messddt(preds, gts, trimaps, plates[:2])
    with pytest.raises(InputError, match="differ in size"):
        temporal.dtssd(preds, [gts[0][:5]] + gts[1:])


def _write_sequence(tmp_path, fixture):
    """The fixture as float EXR frame sequences 1001–1004: pred, gt, trimap, plate."""
    preds, gts, trimaps, plates = fixture
    for k in range(T):
        for name, frames in (("pred", preds), ("gt", gts), ("trimap", trimaps), ("plate", plates)):
            (tmp_path / name).mkdir(exist_ok=True)
            write_exr(tmp_path / name / f"{name}.{1001 + k}.exr", frames[k], fmt="float")
    return {name: str(tmp_path / name / f"{name}.####.exr") for name in ("pred", "gt", "trimap", "plate")}


def test_sequence_scores_of_frame_patterns(tmp_path, fixture):
    preds, gts, trimaps, plates = fixture
    args = _write_sequence(tmp_path, fixture)
    predictions = {"--pred": pairing.find_images(args["pred"])}
    counterparts = {f"--{k}": pairing.find_images(args[k]) for k in ("gt", "trimap", "plate")}
    entries = pairing.pair(predictions, counterparts)
    results = scoring.score(predictions, entries)
    (scores,) = temporal.sequence_scores(results, entries)
    assert scores["dtssd"] == pytest.approx(temporal.dtssd(preds, gts), rel=1e-6)
    assert scores["messddt"] == pytest.approx(temporal.messddt(preds, gts, trimaps, plates), rel=1e-6)
    assert "MESSDdt" in temporal.format_sequence(results, [scores])
    del counterparts["--plate"]
    entries = pairing.pair(predictions, counterparts)
    (scores,) = temporal.sequence_scores(scoring.score(predictions, entries), entries)
    assert scores["messddt"] is None
    one = {"--pred": pairing.find_images(str(tmp_path / "pred" / "pred.1001.exr"))}
    still = {k: pairing.find_images(str(tmp_path / k[2:] / f"{k[2:]}.1001.exr")) for k in ("--gt", "--trimap")}
    entries = pairing.pair(one, still)
    assert temporal.sequence_scores(scoring.score(one, entries), entries) is None  # a still is no sequence


def test_gapped_frames_are_no_sequence_and_json_gets_the_scores(tmp_path, fixture):
    args = _write_sequence(tmp_path, fixture)
    (tmp_path / "pred" / "pred.1003.exr").rename(tmp_path / "pred" / "pred.1009.exr")
    predictions = {"--pred": pairing.find_images(args["pred"])}
    stills = {k: pairing.find_images(str(tmp_path / k[2:] / f"{k[2:]}.1001.exr")) for k in ("--gt", "--trimap")}
    entries = pairing.pair(predictions, stills)
    assert temporal.sequence_scores(scoring.score(predictions, entries), entries) is None
    doc = temporal.with_sequence({"methods": [{"mean": 1}, {"mean": 2}]}, [{"dtssd": 1.0}, {"dtssd": 2.0}])
    assert [m["temporal"]["dtssd"] for m in doc["methods"]] == [1.0, 2.0]
    assert temporal.with_sequence({"mean": 1}, [{"dtssd": 3.0}])["temporal"] == {"dtssd": 3.0}
    assert temporal.with_sequence({"mean": 1}, None) == {"mean": 1}
