"""Maintainer tool: regenerate `tests/corpus/pickle/benign/` (real pickles of fitted models and common values).

Not run by the tests (they read the committed files). Needs scikit-learn, joblib, scipy and numpy.
Run: `.venv/bin/python tests/corpus/pickle/make_benign.py tests/corpus/pickle/benign`.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pathlib
import pickle
import re
import sys
import uuid
import warnings
from pathlib import Path


def _models() -> dict[str, object]:
    from sklearn import (
        cluster,
        decomposition,
        ensemble,
        gaussian_process,
        impute,
        kernel_approximation,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    return {
        "logreg": linear_model.LogisticRegression(max_iter=200), "sgd": linear_model.SGDClassifier(),
        "ridge": linear_model.Ridge(), "tree": tree.DecisionTreeClassifier(max_depth=3),
        "forest": ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0),
        "gbt": ensemble.GradientBoostingClassifier(n_estimators=3),
        "hgb": ensemble.HistGradientBoostingClassifier(max_iter=3), "svc": svm.SVC(),
        "knn": neighbors.KNeighborsClassifier(algorithm="kd_tree"),
        "balltree": neighbors.KNeighborsClassifier(algorithm="ball_tree"), "nb": naive_bayes.GaussianNB(),
        "pipeline": pipeline.make_pipeline(preprocessing.StandardScaler(), decomposition.PCA(2),
                                           linear_model.LogisticRegression()),
        "kmeans": cluster.KMeans(2, n_init=1, random_state=0), "mlp": neural_network.MLPClassifier(max_iter=5),
        "gp": gaussian_process.GaussianProcessClassifier(), "imputer": impute.SimpleImputer(),
        "onehot": preprocessing.OneHotEncoder(), "rbf": kernel_approximation.RBFSampler(random_state=0),
        "adaboost": ensemble.AdaBoostClassifier(n_estimators=2),
        "extratrees": ensemble.ExtraTreesRegressor(n_estimators=2),
    }


def main(argv: list[str]) -> int:
    import joblib
    import numpy as np
    import scipy.sparse as sp
    from sklearn import datasets, feature_extraction

    warnings.filterwarnings("ignore")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    x, y = datasets.make_classification(n_samples=60, n_features=6, random_state=0)

    def dump_joblib(obj: object, name: str) -> None:
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        (out / name).write_bytes(buf.getvalue())

    for name, model in _models().items():
        if name == "onehot":
            model.fit(np.array([["a"], ["b"]], dtype=object))  # type: ignore[attr-defined]
        else:
            model.fit(x, y)  # type: ignore[attr-defined]
        (out / f"sklearn_{name}.pkl").write_bytes(pickle.dumps(model, protocol=4))
        dump_joblib(model, f"sklearn_{name}.joblib")
    vec = feature_extraction.text.TfidfVectorizer().fit(["alpha beta gamma", "beta delta"])
    (out / "sklearn_tfidf.pkl").write_bytes(pickle.dumps(vec, protocol=5))
    rng = {"rng": np.random.default_rng(0), "rs": np.random.RandomState(0),
           "mt": np.random.Generator(np.random.MT19937(1)), "philox": np.random.Generator(np.random.Philox(1)),
           "sfc": np.random.Generator(np.random.SFC64(1)), "pcgdxsm": np.random.Generator(np.random.PCG64DXSM(1)),
           "seq": np.random.SeedSequence(3)}
    (out / "numpy_random.pkl").write_bytes(pickle.dumps(rng, protocol=2))
    arrays = {"f": np.arange(6.0).reshape(2, 3), "i": np.arange(3), "u": np.array(["x", "yy"]),
              "o": np.array([1, "a"], dtype=object), "s": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
              "dt": np.array(["2020-01-01"], dtype="M8[D]"), "scalar": np.float32(1.5),
              "m": np.ma.masked_array([1, 2], mask=[0, 1]), "ufuncs": [np.log1p, np.add, np.exp],
              "dtype": np.dtype("f4"), "b": np.array([True])}
    for protocol in (2, 4, 5):
        (out / f"numpy_arrays_p{protocol}.pkl").write_bytes(pickle.dumps(arrays, protocol=protocol))
    dump_joblib(arrays, "numpy_arrays.joblib")
    sparse = {"csr": sp.csr_matrix(np.eye(3)), "csc": sp.csc_array(np.eye(2)), "coo": sp.coo_matrix(np.eye(2)),
              "lil": sp.lil_matrix(np.eye(2))}
    (out / "scipy_sparse.pkl").write_bytes(pickle.dumps(sparse, protocol=4))
    std = {"od": collections.OrderedDict(a=1), "dd": collections.defaultdict(list, a=[1]),
           "dq": collections.deque([1]), "ct": collections.Counter("aab"),
           "dt": datetime.datetime(2020, 1, 2, 3, 4, tzinfo=datetime.UTC), "d": datetime.date(2020, 1, 1),
           "t": datetime.time(1, 2), "td": datetime.timedelta(3), "dec": decimal.Decimal("1.5"),
           "fr": fractions.Fraction(1, 3), "re": re.compile("a+b", re.I), "uuid": uuid.UUID(int=5),
           "path": pathlib.PurePosixPath("/x"), "set": {1, 2}, "fs": frozenset([3]), "slice": slice(1, 2),
           "range": range(3), "complex": 1j, "ba": bytearray(b"x"), "bytes": b"\x00\x01" * 300, "ell": Ellipsis}
    for protocol in range(6):
        (out / f"stdlib_p{protocol}.pkl").write_bytes(pickle.dumps(std, protocol=protocol))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
