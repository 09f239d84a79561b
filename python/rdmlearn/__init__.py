"""rdmlearn from Python: read results files and run jobs.

>>> import rdmlearn
>>> r = rdmlearn.Results("build/demo/results.h5")    # docs/results.md
>>> r.rdm(1, "V1").matrix                              # float32 N x N
>>> r.folds("svm", "svm")                              # one row per subject x selection x fold
>>> r = rdmlearn.run("jobs/demo.ini", ranks=2, data__root="/tmp/synth")

Tables are pandas DataFrames when pandas is installed, numpy structured arrays otherwise
(``Results(path, tables="records")`` gives lists of dicts). See docs/python.md.
"""
from ._results import RDM, Embeddings, NotFound, Results
from ._run import EXIT_CODES, RdmlearnError, find_binary, run

__version__ = "0.1.0"
__all__ = ["Results", "RDM", "Embeddings", "NotFound", "run", "find_binary", "RdmlearnError", "EXIT_CODES"]
