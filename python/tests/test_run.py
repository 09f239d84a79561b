"""rdmlearn.run: the CLI under mpirun, errors as RdmlearnError, Results back."""
import os

import numpy as np
import pytest

import rdmlearn
from rdmlearn._run import _clean_stderr, _override_args, _physical_cores


def small_job(dataset):
    """One SVM experiment on subj01 V1 of the session's dataset: ~1 s on 2 ranks."""
    return {
        "data": {"root": dataset, "subjects": 1, "rois": ["V1"]},
        "embed": {"backend": "gabor"},
        "pairs": {"experiment": "e2e", "k": 8},
        "run": {"stages": ["rdm", "embed", "svm"], "log_level": "warn"},
    }


def test_bad_key_is_an_exception_with_exit_code_4(dataset, tmp_path):
    out = tmp_path / "bad.h5"
    with pytest.raises(rdmlearn.RdmlearnError) as e:
        rdmlearn.run(small_job(dataset), ranks=2, output=out, data__bogus=1)
    err = e.value
    assert err.exit_code == 4 and err.kind.startswith("configuration")
    assert "unknown key [data] bogus" in err.message and "valid keys in [data]" in err.message
    assert "--set data.bogus=1" in err.message
    # the launcher's banners are gone: only rdmlearn's own line (once, though every rank failed)
    assert err.message.splitlines() == [l for l in err.stderr.splitlines() if l.startswith("rdmlearn run: error:")][:1]
    assert "detected that" not in err.message and "-----" not in err.message and "detected that" in err.stderr
    assert "unknown key [data] bogus" in str(err) and "exit code 4" in str(err)
    assert "data.bogus=1" in " ".join(err.command) and not out.exists()
    assert ("--oversubscribe" in err.command) == (2 > _physical_cores())
    # the dict form of the overrides says the same; more ranks than cores: --oversubscribe
    ranks = _physical_cores() + 1
    with pytest.raises(rdmlearn.RdmlearnError, match=r"unknown key \[pairs\] kk") as e:
        rdmlearn.run(small_job(dataset), ranks=ranks, output=out, settings={"pairs.kk": 3})
    assert e.value.exit_code == 4 and "--oversubscribe" in e.value.command
    assert e.value.command[e.value.command.index("-n") + 1] == str(ranks)
    # a data error: the dataset has no subject 5 -> exit code 7 (data) with the CLI's message
    with pytest.raises(rdmlearn.RdmlearnError) as e:
        rdmlearn.run(small_job(dataset), ranks=2, output=out, data__subjects=5)
    assert e.value.exit_code == 7 and e.value.kind.startswith("data")
    assert "subject 5 not found" in e.value.message and "available: 1, 2" in e.value.message


def test_run_end_to_end(dataset, tmp_path, h5):
    out = tmp_path / "e2e.h5"
    r = rdmlearn.run(small_job(dataset), ranks=2, output=out, svm__c=2.0)
    assert isinstance(r, rdmlearn.Results) and r.path == str(out)
    assert r.experiments == ["e2e"] and r.models("e2e") == ["svm"] and r.subjects == [1]
    assert r.config("svm")["svm"]["c"] == "2.0" and r.config("svm")["data"]["rois"] == "V1"
    t = r.folds("e2e", "svm")
    assert len(t) == 5 and set(t["status"]) == {"ok"}
    assert ((t["accuracy"] >= 0) & (t["accuracy"] <= 1)).all()
    # the same dataset, settings and seed as the session's file: the same V1 RDM of subj01
    assert np.array_equal(r.rdm(1, "V1").matrix, h5["/subjects/subj01/rdm/V1"][()])
    assert "--allow-run-as-root" in r.command if os.geteuid() == 0 else True
    # a job file with a relative run.output, run from another directory without output=:
    # the Results is the job's output relative to cwd; every stage is cached (the config hash)
    job = tmp_path / "job.ini"
    job.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {','.join(map(str, v)) if isinstance(v, list) else v}\n"
                                                for k, v in keys.items())
                           for s, keys in small_job(dataset).items()) + "[svm]\nc = 2.0\n")
    (tmp_path / "sub").mkdir()
    os.replace(out, tmp_path / "sub" / "cached.h5")
    r2 = rdmlearn.run("../job.ini", ranks=1, cwd=tmp_path / "sub", run__output="cached.h5",
                      run__log_level="info")
    assert r2.path == str(tmp_path / "sub" / "cached.h5")
    assert r2.log.count("up to date") == 3, r2.log
    assert r2.folds("e2e", "svm").equals(t)


def test_binary_lookup_and_overrides(monkeypatch, tmp_path, binary):
    monkeypatch.setenv("RDMLEARN", binary)
    assert rdmlearn.find_binary() == os.path.abspath(binary)
    assert rdmlearn.find_binary(binary) == os.path.abspath(binary)
    monkeypatch.setenv("RDMLEARN", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="RDMLEARN="):
        rdmlearn.find_binary()
    with pytest.raises(FileNotFoundError, match="not an executable"):
        rdmlearn.find_binary(tmp_path / "nothing")
    assert _override_args({"data.root": tmp_path}, {"data__rois": ["V1", "class:Faces"], "embed__normalize": True,
                                                     "svm__c": 0.5}) == [
        "--set", f"data.root={tmp_path}", "--set", "data.rois=V1,class:Faces", "--set", "embed.normalize=true",
        "--set", "svm.c=0.5"]
    with pytest.raises(TypeError, match="section__key"):
        rdmlearn.run("jobs/demo.ini", binary=binary, rois="V1")
    with pytest.raises(ValueError, match="section.key"):
        _override_args({"root": 1}, {})


def test_clean_stderr():
    text = ("rdmlearn run: error: x\n"
            "--------------------------------------------------------------------------\n"
            "Primary job  terminated normally, but 1 process returned\n"
            "--------------------------------------------------------------------------\n"
            "rdmlearn run: error: x\n  hint: y\n")
    assert _clean_stderr(text) == "rdmlearn run: error: x\n  hint: y"
