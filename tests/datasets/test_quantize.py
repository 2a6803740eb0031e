"""Static int8 of the shipped street model: which nodes are quantised, and that it still finds what fp32 finds."""

from __future__ import annotations

import onnx
import pytest

from datasets.quantize import calibration_images, head_nodes, head_output_convs, quantize_static_int8
from detector.geometry import box_iou
from detector.imageio import read_image
from detector.runtime import load_model
from detector.runtime.card import sha256_of


@pytest.fixture(scope="module")
def street_int8(tmp_path_factory, bicycles_dir):
    fp32 = load_model("street")
    out = tmp_path_factory.mktemp("int8") / "street-int8.onnx"
    calib = calibration_images(bicycles_dir / "train" / "images", 16)
    quantize_static_int8(fp32.card, out, calib)
    card = fp32.card.model_copy(update={"name": "street-int8-test", "file": str(out), "sha256": sha256_of(out),
                                        "card_path": str(out.with_suffix(".card.yaml"))})
    return fp32, card, out


def test_head_nodes_are_the_detect_modules_non_convolutions():
    model = onnx.load(str(load_model("street").card.resolved_file()))
    head = set(head_nodes(model))
    by_name = {n.name: n for n in model.graph.node}
    assert head and all(name.startswith("/model.22/") for name in head)
    assert not any(by_name[name].op_type == "Conv" for name in head)
    assert any(by_name[name].op_type == "Sigmoid" for name in head)  # the class scores stay in float


def test_head_output_convs_are_the_unactivated_convolutions_of_the_head():
    model = onnx.load(str(load_model("street").card.resolved_file()))
    names = head_output_convs(model)
    # Per scale (3) one box-distribution and one class-logit convolution, plus the DFL's expectation.
    assert len(names) == 7
    assert {n.split("/")[2] for n in names} == {"cv2.0", "cv3.0", "cv2.1", "cv3.1", "cv2.2", "cv3.2", "dfl"}
    assert not set(names) & set(head_nodes(model))


def test_float_head_outputs_keeps_those_convolutions_in_float(tmp_path, bicycles_dir):
    card = load_model("street").card
    out = quantize_static_int8(card, tmp_path / "q.onnx", calibration_images(bicycles_dir / "train" / "images", 4),
                               float_head_outputs=True)
    graph = onnx.load(str(out)).graph
    produced_by = {o: n for n in graph.node for o in n.output}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    kept = head_output_convs(onnx.load(str(card.resolved_file())))

    def weight_is_dequantised(node) -> bool:
        return produced_by.get(node.input[1]) is not None and produced_by[node.input[1]].op_type == "DequantizeLinear"

    assert all(not weight_is_dequantised(convs[name]) for name in kept)
    assert weight_is_dequantised(convs["/model.22/cv2.0/cv2.0.1/conv/Conv"])  # the rest of the head is int8


def test_body_activations_are_quantised_and_the_head_is_not(street_int8):
    _, _, out = street_int8
    graph = onnx.load(str(out)).graph
    produced_by = {o: n for n in graph.node for o in n.output}

    def fed_by_dequantize(node) -> bool:
        return any(produced_by.get(i) is not None and produced_by[i].op_type == "DequantizeLinear" for i in node.input)

    sigmoids = [n for n in graph.node if n.op_type == "Sigmoid"]
    body = [n for n in sigmoids if not n.name.startswith("/model.22/")]
    # The class-score sigmoid (not a convolution's SiLU) and the output: float, boxes and scores apart.
    scores = [n for n in sigmoids if n.name.startswith("/model.22/") and "/act/" not in n.name]
    assert body and all(fed_by_dequantize(n) for n in body)   # SiLU inside the int8 graph
    assert scores and not any(fed_by_dequantize(n) for n in scores)
    assert all(produced_by[o.name].op_type not in ("DequantizeLinear", "QuantizeLinear") for o in graph.output)


def test_int8_finds_the_bikes_fp32_finds(street_int8, bicycles_dir):
    fp32, card, _ = street_int8
    from detector.runtime.detector import OnnxDetector

    int8 = OnnxDetector(card)
    images = sorted((bicycles_dir / "val" / "images").glob("*.jpg"))[:20]
    matched = total = 0
    for path in images:
        image = read_image(path)
        a, b = fp32.detect(image), int8.detect(image, min_score=0.1)
        strong = a[a.confidence >= 0.4]
        total += len(strong)
        if len(strong) and len(b):
            matched += int((box_iou(strong.xyxy, b.xyxy).max(axis=1) >= 0.7).sum())
    assert total >= 10, "too few confident fp32 boxes to compare"
    assert matched / total >= 0.9, f"int8 kept {matched} of {total} confident fp32 boxes"


def test_an_unknown_calibration_method_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        quantize_static_int8(load_model("street").card, tmp_path / "x.onnx", [], method="median")
    assert not list(tmp_path.iterdir())
