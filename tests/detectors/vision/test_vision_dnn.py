"""The dnn counter's loading and post-processing, on a tiny ONNX model built here."""

import numpy as np
import pytest

from detectors.vision.config import CameraConfig, DnnSettings
from detectors.vision.counters import make_counter
from detectors.vision.dnn import decode, guess_layout

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SIZE = 64  # network input, square


def tiny_yolov8(boxes) -> bytes:
    """An ONNX model whose output is ``boxes`` (YOLOv8 layout, 2 classes) plus 0 * mean(input).

    The input still flows through the graph, so cv2.dnn really runs it.
    """
    const = np.asarray(boxes, np.float32).T[None]  # [1, 4+2, N]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
            helper.make_node("Mul", ["m", "zero"], ["z"]),
            helper.make_node("Add", ["z", "dets"], ["out"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(const.shape))],
        [
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
            numpy_helper.from_array(const, "dets"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_dnn_counter_on_a_tiny_onnx_model():
    # cx, cy, w, h (network pixels), score person, score other class
    dets = [
        [16, 40, 8, 16, 0.9, 0.1],  # person, feet (16, 48) -> frame (32, 96): left zone
        [17, 40, 8, 16, 0.8, 0.1],  # duplicate of the first: suppressed
        [48, 40, 8, 16, 0.7, 0.0],  # person, feet (48, 48) -> frame (96, 96): right zone
        [48, 20, 8, 16, 0.1, 0.9],  # not a person
        [30, 10, 8, 8, 0.2, 0.0],  # below the score threshold
        *([[0, 0, 1, 1, 0.0, 0.0]] * 8),  # padding: real heads have far more boxes than channels
    ]
    cfg = CameraConfig(
        method="dnn",
        model="tiny.onnx",  # named for the edge; the counter only sees the bytes
        polygons={
            "left": [(0, 0), (64, 0), (64, 128), (0, 128)],
            "right": [(64, 0), (128, 0), (128, 128), (64, 128)],
        },
        dnn={"input_size": (SIZE, SIZE), "score_threshold": 0.4},
    )
    counter = make_counter(cfg, model=tiny_yolov8(dets))
    frame = np.zeros((128, 128, 3), np.uint8)  # twice the network size: boxes scale by 2
    assert counter.count(frame) == {"left": 1, "right": 1}
    assert counter.layout_name == "yolov8"
    np.testing.assert_allclose(sorted(counter.last_boxes[:, 0]), [24, 88], atol=1e-3)


def test_a_dnn_counter_without_the_model_bytes_is_a_clear_error():
    cfg = CameraConfig(method="dnn", model="x.onnx", polygons={"a": [(0, 0), (1, 0), (1, 1)]})
    with pytest.raises(ValueError, match="needs the ONNX model's bytes"):
        make_counter(cfg)


def test_decode_ssd_and_yolov5_layouts():
    s = DnnSettings(score_threshold=0.5, person_class=1)
    ssd = np.array([[[[0, 1, 0.9, 0.1, 0.2, 0.3, 0.6], [0, 2, 0.9, 0, 0, 1, 1]]]], np.float32)
    assert guess_layout(ssd) == "ssd"
    boxes, scores = decode(ssd, s, "ssd", (100, 200))
    np.testing.assert_allclose(boxes, [[10, 40, 20, 80]], atol=1e-4)
    v5 = np.array([[[50, 50, 10, 20, 0.9, 0.1, 0.8], [50, 50, 10, 20, 0.3, 0.1, 0.9]]], np.float32)
    boxes, scores = decode(v5, s, "yolov5", (100, 100))
    np.testing.assert_allclose(boxes, [[45, 40, 10, 20]])
    assert scores == pytest.approx([0.72])
