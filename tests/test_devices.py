"""translate/devices.py: the one place that picks the device and the autocast dtype."""
from __future__ import annotations

import pytest
import torch

from translate import devices


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(devices, "_warned", set())


@pytest.mark.parametrize("precision, dtype", [("no", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_precision_maps_to_its_autocast_dtype(precision, dtype):
    assert devices.autocast_dtype(precision) is dtype


def test_an_unknown_precision_names_the_flag_and_the_choices():
    with pytest.raises(devices.DeviceError, match=r"--mixed_precision must be one of no, fp16, bf16"):
        devices.autocast_dtype("fp8")


def test_autocast_runs_a_convolution_in_bf16_on_the_cpu_and_no_is_float32():
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.rand(1, 3, 8, 8)
    with devices.autocast("cpu", "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with devices.autocast("cpu", "no"):
        assert conv(x).dtype == torch.float32


@pytest.mark.parametrize("gpu_ids, ids", [("0", [0]), ("1,0", [1, 0]), ("1,-1,2", [1, 2]), ("-1", []), ("", []), ((2,), [2]),
                                          ((), []), (None, [])])
def test_gpu_ids_parse_as_the_classic_flag(gpu_ids, ids):
    assert devices.gpu_list(gpu_ids) == ids


def test_bad_gpu_ids_say_what_to_give():
    with pytest.raises(devices.DeviceError, match=r"--gpu_ids 'gpu0'.*-1 for the CPU"):
        devices.gpu_list("gpu0")


def test_the_cpu_when_asked_or_when_there_is_no_gpu():
    assert devices.pick_device("-1") == torch.device("cpu")
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert devices.pick_device("0") == expected
    assert devices.wants_gpu("0") == torch.cuda.is_available()
    assert not devices.wants_gpu("-1")


def test_fp16_on_the_cpu_is_refused_as_the_options_refuse_it():
    with pytest.raises(devices.DeviceError, match="fp16 needs a GPU; on the CPU use bf16 or no"):
        devices.check_precision("-1", "fp16")
    devices.check_precision("-1", "bf16")
    devices.check_precision("0", "fp16")
    from options import OptionsError, parse_train_options
    with pytest.raises(OptionsError, match=devices.FP16_NEEDS_GPU):
        parse_train_options(["--gpu_ids", "-1", "--mixed_precision", "fp16", "--name", "x"])


def test_emulated_bf16_warns_once_with_the_text_naming_the_cost(capsys):
    emulated = not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert devices.native_precision("cpu", "bf16") is not emulated
    first = devices.warn_if_emulated("cpu", "bf16")
    second = devices.warn_if_emulated("cpu", "bf16")
    err = capsys.readouterr().err
    assert (first, second) == (emulated, False)
    if emulated:
        assert err == ("warning: this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 convolutions fall "
                       "back to emulated kernels, often 10x slower than fp32. Use --mixed_precision no here.\n")
    else:
        assert err == ""


def test_float32_and_gpus_never_warn(capsys):
    assert not devices.warn_if_emulated("cpu", "no")
    assert not devices.warn_if_emulated(torch.device("cuda:0"), "bf16")
    assert capsys.readouterr().err == ""
