"""mssr.environment: the versions and CPU kernels a run records beside its config."""

from __future__ import annotations

import platform

import torch

from mssr import environment
from mssr.environment import cpu_model, describe

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu avx2 avx512f

processor\t: 1
model name\t: AMD EPYC 9B14
"""


def test_cpu_model_reads_the_first_model_name(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert cpu_model(info) == "AMD EPYC 9B14"
    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    assert cpu_model(tmp_path / "missing") == "x86_64"  # no /proc: the platform's word
    (tmp_path / "empty").write_text("processor\t: 0\n")
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_model(tmp_path / "empty") is None


def test_describe_names_versions_kernels_and_set_variables(monkeypatch):
    for name in environment.KERNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setattr(environment, "PACKAGES", ("transformers", "surely-not-installed-pkg-3141"))
    env = describe()
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["transformers"] and env["surely-not-installed-pkg-3141"] is None
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["variables"] == {"MKL_CBWR": "AVX2"}  # only what is set
    assert env["cuda_device"] is None or isinstance(env["cuda_device"], str)
