"""Model-file surgery that needs the `onnx` package (a dev/train dependency, never needed to run models)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_batch_dynamic"]


def make_batch_dynamic(src: Path, dst: Path) -> int:
    """Write a copy of `src` whose batch axis is symbolic, so several frames or tiles share one run.

    Exporters often bake batch size 1 into Reshape targets; those leading 1s become 0 ("copy this axis
    from the input"), which is exact for graphs whose reshapes keep the batch axis first (YOLOX). The
    caller must check the result against single-image runs: graphs that fold the batch into other axes
    fail to load or run. Returns the number of Reshape targets rewritten.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # stale fixed-batch shape annotations would contradict the new axis
    initializers = {t.name: t for t in model.graph.initializer}
    constants = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant"}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        tensor = initializers.get(node.input[1]) or constants.get(node.input[1])
        if tensor is None:
            continue
        target = numpy_helper.to_array(tensor).copy()
        if target.size and target[0] == 1:
            target[0] = 0
            tensor.CopyFrom(numpy_helper.from_array(target, tensor.name))
            rewritten += 1
    onnx.save(model, str(dst))
    return rewritten
