# ruff: noqa: SIM905 - the word lists read better as strings
"""Maintainer tool: rebuild `src/mlsec_actions/analyzers/data/pickle_allowlist.json`.

Not run by the tests. Needs numpy, scikit-learn, scipy (and pandas) installed. It lists, by introspection,
the classes of the estimator, loss, kernel and tree modules of scikit-learn, numpy's ufuncs, scalar and dtype
classes, and merges the hand-reviewed entries (torch, stdlib) kept in this file. Every entry carries a
one-line reason it is inert; review the diff before committing (a new entry is a security decision).
Run: `.venv/bin/python tests/corpus/pickle/build_allowlist.py`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[3] / "src/mlsec_actions/analyzers/data/pickle_allowlist.json"

_DTYPES = ("float16 float32 float64 bfloat16 half double int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool "
           "complex32 complex64 complex128 cfloat cdouble long int short qint8 quint8 qint32 quint4x2 quint2x4 "
           "float8_e4m3fn float8_e5m2 float8_e4m3fnuz float8_e5m2fnuz bits8 bits16")
_STORAGES = ("Float Half BFloat16 Double Long Int Short Char Byte Bool ComplexFloat ComplexDouble QInt8 QUInt8 "
             "QInt32 QUInt4x2 QUInt2x4")
_TORCH_NN = {
    "linear": "Linear Bilinear Identity LazyLinear", "conv": "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d "
    "ConvTranspose3d", "activation": "ReLU ReLU6 GELU SiLU Sigmoid Tanh Softmax LogSoftmax LeakyReLU PReLU ELU SELU "
    "Hardswish Hardsigmoid Mish Softplus MultiheadAttention GLU Hardtanh", "batchnorm": "BatchNorm1d BatchNorm2d "
    "BatchNorm3d SyncBatchNorm", "normalization": "LayerNorm GroupNorm LocalResponseNorm RMSNorm",
    "instancenorm": "InstanceNorm1d InstanceNorm2d InstanceNorm3d", "dropout": "Dropout Dropout1d Dropout2d Dropout3d "
    "AlphaDropout", "pooling": "MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d "
    "AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d", "container": "Sequential ModuleList "
    "ModuleDict ParameterList ParameterDict", "sparse": "Embedding EmbeddingBag", "rnn": "LSTM GRU RNN LSTMCell "
    "GRUCell RNNCell", "transformer": "Transformer TransformerEncoder TransformerDecoder TransformerEncoderLayer "
    "TransformerDecoderLayer", "flatten": "Flatten Unflatten", "padding": "ZeroPad2d ConstantPad1d ConstantPad2d "
    "ReflectionPad2d ReplicationPad2d", "pixelshuffle": "PixelShuffle PixelUnshuffle", "upsampling": "Upsample "
    "UpsamplingNearest2d UpsamplingBilinear2d", "loss": "CrossEntropyLoss MSELoss L1Loss NLLLoss BCELoss "
    "BCEWithLogitsLoss SmoothL1Loss HuberLoss KLDivLoss", "module": "Module"}

HAND: dict[str, dict[str, str]] = {
    "builtins": {n: "builtin value type: the constructor only builds a value" for n in
                 "set frozenset slice range complex bytearray bytes dict list tuple int float bool str object".split()}
    | {"Ellipsis": "builtin singleton", "NotImplemented": "builtin singleton"}
    | {n: "builtin numeric function of its arguments; calls nothing it is given" for n in
       "len abs round divmod".split()},
    "__future__": {n: "compiler feature flag record; inert data" for n in
                   "annotations division print_function absolute_import generators nested_scopes with_statement "
                   "unicode_literals generator_stop barry_as_FLUFL".split()},
    "collections.abc": {n: "abstract base class: calling it builds nothing" for n in
                        "Iterable Iterator Mapping MutableMapping Sequence MutableSequence Set MutableSet Hashable "
                        "Sized Container Collection Callable Generator Reversible".split()},
    "copyreg": {"_reconstructor": "object.__new__(cls) then base.__init__: the classes are judged on their own",
                "__newobj__": "cls.__new__(cls, *args): cls is judged on its own",
                "__newobj_ex__": "cls.__new__(cls, *args, **kwargs): cls is judged on its own"},
    "_codecs": {"encode": "protocol 0-2 bytes: str.encode (text codecs only reach encodings.*)"},
    "codecs": {"encode": "same function as _codecs.encode"},
    "collections": {n: "container class; the constructor only stores items" for n in
                    "OrderedDict defaultdict deque Counter ChainMap".split()},
    "datetime": {n: "value class; the constructor only validates numbers" for n in
                 "datetime date time timedelta timezone".split()},
    "decimal": {"Decimal": "number value class"}, "fractions": {"Fraction": "number value class"},
    "uuid": {"UUID": "value class built from an int or hex string (not uuid's command helpers)"},
    "re": {"_compile": "compiles a regular expression (what re.Pattern pickles to)"},
    "pathlib": {n: "path value; constructing it touches no file" for n in
                "PurePosixPath PureWindowsPath PosixPath WindowsPath PurePath Path".split()},
    "numpy.core.multiarray": {"_reconstruct": "empty ndarray of a given dtype; BUILD fills it",
                              "scalar": "numpy scalar from dtype and raw bytes", "_frombuffer": "ndarray over bytes"},
    "numpy._core.multiarray": {"_reconstruct": "empty ndarray of a given dtype; BUILD fills it",
                               "scalar": "numpy scalar from dtype and raw bytes"},
    "numpy.core": {"_ufunc_reconstruct": "imports a numpy ufunc by module and name (checked: both must be literal "
                                         "and are judged as an import)"},
    "numpy._core": {"_ufunc_reconstruct": "imports a numpy ufunc by module and name (checked: both must be literal "
                                          "and are judged as an import)"},
    "numpy.core.numeric": {"_frombuffer": "ndarray over a buffer (protocol 5 arrays)"},
    "numpy._core.numeric": {"_frombuffer": "ndarray over a buffer (protocol 5 arrays)"},
    "numpy.ma.core": {"_mareconstruct": "empty masked array; BUILD fills it", "MaskedArray": "masked array class"},
    "numpy.ma": {"MaskedArray": "masked array class"},
    "numpy.random._pickle": {"__randomstate_ctor": "RandomState from a bit generator (judged on its own)",
                             "__bit_generator_ctor": "instantiates a bit generator class with no arguments",
                             "__generator_ctor": "Generator over a bit generator"},
    "numpy.random.mtrand": {"RandomState": "random generator state class"},
    "numpy.random": {"RandomState": "random generator state class", "Generator": "random generator class"},
    "numpy.random._generator": {"Generator": "random generator class"},
    "numpy.random.bit_generator": {"SeedSequence": "seed value class",
                                   "__pyx_unpickle_SeedSequence": "Cython state restore of SeedSequence"},
    "numpy.random._mt19937": {"MT19937": "bit generator class"}, "numpy.random._pcg64": {
        "PCG64": "bit generator class", "PCG64DXSM": "bit generator class"},
    "numpy.random._philox": {"Philox": "bit generator class"}, "numpy.random._sfc64": {"SFC64": "bit generator class"},
    "joblib.numpy_pickle": {"NumpyArrayWrapper": "joblib's array placeholder (the array bytes follow, skipped)"},
    "joblib.numpy_pickle_compat": {"NDArrayWrapper": "old joblib array placeholder (names a side file)"},
    "torch": {n: "torch dtype value" for n in _DTYPES.split()}
    | {f"{s}Storage": "legacy typed storage class (persistent id)" for s in _STORAGES.split()}
    | {n: "torch value class" for n in "Size device dtype layout memory_format Tensor UntypedStorage TypedStorage "
       "Generator".split()}
    | {n: "torch layout / memory-format / qscheme value" for n in "strided sparse_coo sparse_csr sparse_csc "
       "sparse_bsr sparse_bsc _mkldnn contiguous_format channels_last channels_last_3d preserve_format "
       "per_tensor_affine per_channel_affine per_tensor_symmetric per_channel_symmetric "
       "per_channel_affine_float_qparams".split()},
    "torch._utils": {n: "torch's tensor rebuild helper (tensor from storage, sizes, strides)" for n in
                     "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
                     "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor _rebuild_nested_tensor "
                     "_rebuild_device_tensor_from_numpy _rebuild_device_tensor_from_cpu_tensor "
                     "_rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass _rebuild_xla_tensor "
                     "_rebuild_mtia_tensor".split()},
    "torch._tensor": {"_rebuild_from_type": "tensor subclass rebuild (checked: calls its first argument)",
                      "_rebuild_from_type_v2": "tensor subclass rebuild (checked: calls its first argument)"},
    "torch.storage": {"_load_from_bytes": "torch.load of an inline byte string (checked: the bytes must be a "
                      "literal, and they are scanned)", "UntypedStorage": "storage class",
                      "TypedStorage": "storage class"},
    "torch.serialization": {"_get_layout": "layout lookup by name"},
    "torch.nn.parameter": {"Parameter": "tensor parameter class", "Buffer": "tensor buffer class",
                           "UninitializedParameter": "lazy parameter class"},
    "torch.nn.modules.module": {"Module": "base module class; state restored into its __dict__"},
} | {f"torch.nn.modules.{mod}": {n: "standard torch.nn layer class; state restored into its __dict__"
                                 for n in names.split()} for mod, names in _TORCH_NN.items()}

# Functions allowed only with checked arguments (pickle_scan verifies every call).
CHECKED = {
    ("torch.storage", "_load_from_bytes"): "nested-payload",
    ("torch._tensor", "_rebuild_from_type"): "apply",
    ("torch._tensor", "_rebuild_from_type_v2"): "apply",
    ("numpy.core", "_ufunc_reconstruct"): "import-by-name",
    ("numpy._core", "_ufunc_reconstruct"): "import-by-name",
}

_SKLEARN_MODULES = ("sklearn._loss.loss", "sklearn._loss.link", "sklearn._loss._loss", "sklearn.linear_model._sgd_fast",
                    "sklearn.gaussian_process.kernels", "sklearn.metrics._dist_metrics", "sklearn.tree._tree",
                    "sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree",
                    "sklearn.ensemble._hist_gradient_boosting.binning",
                    "sklearn.ensemble._hist_gradient_boosting.predictor",
                    "sklearn.neural_network._stochastic_optimizers",
                    "sklearn.utils._bunch", "sklearn.preprocessing._label", "sklearn.gaussian_process._gpc",
                    "sklearn.gaussian_process._gpr", "sklearn.tree._classes", "sklearn.dummy")


def _classes(modname: str) -> dict[str, str]:
    mod = importlib.import_module(modname)
    return {n: "scikit-learn model class; state restored into its __dict__" for n, obj in vars(mod).items()
            if inspect.isclass(obj) and obj.__module__ == modname and not n.startswith("_Base")
            and "test" not in n.lower()}


def build() -> dict[str, object]:
    import numpy
    from sklearn.utils import all_estimators

    table: dict[str, dict[str, str]] = {m: dict(v) for m, v in HAND.items()}
    for name, obj in vars(numpy).items():
        if isinstance(obj, numpy.ufunc):
            # numpy 1.x and 2.x name ufuncs by their public module or by the C module that defines them.
            for module in ("numpy", "numpy.core.umath", "numpy._core.umath", "numpy.core._multiarray_umath",
                           "numpy._core._multiarray_umath"):
                table.setdefault(module, {})[name] = "numpy ufunc: elementwise math on arrays, no I/O"
        elif inspect.isclass(obj) and issubclass(obj, numpy.generic | numpy.dtype | numpy.ndarray):
            table.setdefault("numpy", {})[name] = "numpy scalar / array / dtype class"
    for name, obj in vars(numpy.dtypes).items():
        if inspect.isclass(obj) and issubclass(obj, numpy.dtype):
            table.setdefault("numpy.dtypes", {})[name] = "numpy dtype class"
    for _, cls in all_estimators():
        table.setdefault(cls.__module__, {})[cls.__qualname__] = "scikit-learn estimator class; state restored " \
                                                                 "into its __dict__"
    for modname in _SKLEARN_MODULES:
        table.setdefault(modname, {}).update(_classes(modname))
    for modname in ("sklearn.metrics._dist_metrics", "sklearn.neighbors._kd_tree", "sklearn.neighbors._ball_tree"):
        table[modname]["newObj"] = "Cython helper: cls.__new__(cls) (cls judged on its own)"
    for modname in ("scipy.sparse._csr", "scipy.sparse._csc", "scipy.sparse._coo", "scipy.sparse._lil",
                    "scipy.sparse._dok", "scipy.sparse._bsr", "scipy.sparse._dia"):
        kind = modname.rsplit("_", 1)[1]
        table.setdefault(modname, {}).update({f"{kind}_matrix": "sparse matrix class", f"{kind}_array":
                                              "sparse array class"})
    try:
        _pandas(table)
    except ImportError:
        print("pandas not installed: its entries are not refreshed", file=sys.stderr)
    return {"comment": "Exact (module, qualname) pairs a model pickle may import. Each value says why it is "
                       "inert. Generated by tests/corpus/pickle/build_allowlist.py; reviewed by hand.",
            "allow": {m: dict(sorted(v.items())) for m, v in sorted(table.items())},
            "checked": [{"module": m, "name": n, "check": c} for (m, n), c in sorted(CHECKED.items())]}


def _pandas(table: dict[str, dict[str, str]]) -> None:
    import io
    import pickle

    import numpy
    import pandas

    from mlsec_actions.analyzers import pickle_walk
    frames = [pandas.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": pandas.Categorical(["u", "v"]),
                                "d": pandas.to_datetime(["2020-01-01", "2020-01-02"]), "e": [1.5, None]}),
              pandas.Series([1, 2], index=pandas.MultiIndex.from_tuples([(1, 2), (3, 4)])),
              pandas.Series(pandas.array([1, None], dtype="Int64")), pandas.Index(["a"]),
              pandas.RangeIndex(3), pandas.Series(numpy.arange(3), index=pandas.date_range("2020", periods=3)),
              pandas.Series(["a"], dtype="string"), pandas.Timestamp("2020"), pandas.Timedelta(1)]
    for frame in frames:
        for protocol in (2, 4, 5):
            report = pickle_walk.walk(io.BytesIO(pickle.dumps(frame, protocol=protocol)))
            for g in report.globals:
                if g.module.startswith("pandas"):
                    table.setdefault(g.module, {})[g.name] = "pandas data structure / unpickle helper"


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {OUT}")
