"""Classic flags, per-model defaults, and bad combinations that must stop at start-up."""
import re

import pytest

from options import OptionsError, format_options, parse_test_options, parse_train_options, train_config_from_dict


def test_cycle_gan_defaults_match_the_classic_code():
    c = parse_train_options(["--dataroot", "d", "--model", "cycle_gan"])
    assert (c.net.netG, c.net.netD, c.net.norm, c.net.use_dropout) == ("resnet_9blocks", "basic", "instance", False)
    assert (c.loss.gan_mode, c.loss.lambda_a, c.loss.lambda_b, c.loss.lambda_identity) == ("lsgan", 10, 10, 0.5)
    assert c.optim.pool_size == 50 and c.data.dataset_mode == "unaligned"
    assert (c.data.load_size, c.data.crop_size, c.optim.lr, c.optim.beta1) == (286, 256, 0.0002, 0.5)
    assert (c.optim.n_epochs, c.optim.n_epochs_decay, c.optim.lr_policy) == (100, 100, "linear")


def test_pix2pix_defaults_match_the_classic_code():
    c = parse_train_options(["--dataroot", "d", "--model", "pix2pix", "--direction", "BtoA"])
    assert (c.net.netG, c.net.norm, c.net.use_dropout) == ("unet_256", "batch", True)
    assert (c.data.dataset_mode, c.loss.gan_mode, c.loss.lambda_l1, c.optim.pool_size) == ("aligned", "vanilla", 100, 0)
    assert c.data.direction == "BtoA"


def test_vit_siren_trains_at_twice_the_classic_learning_rate_with_an_ema_unless_told():
    # README, equal-time table: both beat the classic settings for vit_siren; classic runs keep theirs.
    vit = ["--dataroot", "d", "--model", "pix2pix", "--netG", "vit_siren", "--crop_size", "128"]
    assert (parse_train_options(vit).optim.lr, parse_train_options(vit).optim.ema_decay) == (0.0004, 0.99)
    told = parse_train_options([*vit, "--lr", "0.0001", "--ema_decay", "0"]).optim
    assert (told.lr, told.ema_decay) == (0.0001, 0.0)
    classic = parse_train_options(["--dataroot", "d", "--model", "pix2pix", "--netG", "unet_128"]).optim
    assert (classic.lr, classic.ema_decay) == (0.0002, 0.0)
    assert parse_test_options(["--dataroot", "d", "--netG", "vit_siren", "--crop_size", "128"]).net.netG == "vit_siren"
    lines = {ln.split()[0]: ln.split() for ln in format_options(parse_train_options(vit).flags).splitlines()[1:-1]}
    assert lines["lr:"] == ["lr:", "0.0004", "[default:", "0.0002]"]   # train_opt.txt says it is not the classic one


def test_explicit_flags_beat_model_defaults():
    c = parse_train_options(["--dataroot", "d", "--model", "pix2pix", "--netG", "resnet_9blocks",
                             "--norm", "instance", "--gan_mode", "lsgan", "--pool_size", "7"])
    assert (c.net.netG, c.net.norm, c.loss.gan_mode, c.optim.pool_size) == ("resnet_9blocks", "instance", "lsgan", 7)


def test_test_defaults():
    c = parse_test_options(["--dataroot", "d", "--name", "horse2zebra_pretrained", "--no_dropout"])
    assert c.run.model == "test" and c.data.dataset_mode == "single"
    assert (c.data.load_size, c.data.crop_size, c.num_test, c.data.phase) == (256, 256, 50, "test")
    assert c.data.serial_batches and c.data.no_flip and c.data.num_threads == 0
    assert c.run.epoch == "latest"


def test_gpu_ids_minus_one_means_cpu():
    assert parse_train_options(["--gpu_ids", "-1"]).run.gpu_ids == ()
    assert parse_train_options(["--gpu_ids", "0,1"]).run.gpu_ids == (0, 1)


def test_builtin_data_uses_smaller_default_sizes():
    c = parse_train_options(["--model", "pix2pix", "--netG", "unet_128"])
    assert c.data.dataroot is None and (c.data.load_size, c.data.crop_size) == (143, 128)


@pytest.mark.parametrize("argv,message", [
    (["--model", "cycle_gan", "--input_nc", "1", "--output_nc", "3"], "--lambda_identity"),
    (["--model", "cycle_gan", "--lambda_L1", "5"], "--lambda_L1 needs paired"),
    (["--model", "csgan", "--dataset_mode", "unaligned"], "needs paired data"),
    (["--model", "pix2pix", "--dataset_mode", "unaligned"], "needs paired data"),
    (["--load_size", "100", "--crop_size", "128"], "larger than --load_size"),
    (["--model", "pix2pix", "--crop_size", "128", "--load_size", "143"], "multiples of 256"),
    (["--input_nc", "2", "--lambda_identity", "0"], "1 (grayscale) or 3"),
    (["--diffaugment", "color,blur"], "blur"),
    (["--gpu_ids", "x"], "--gpu_ids"),
    # The discriminator's receptive field / downsamplings against the crop size (70x70 PatchGAN: 24 px).
    (["--crop_size", "16", "--load_size", "16"], "--crop_size 16: --netG resnet_9blocks and --netD basic need"),
    (["--crop_size", "20", "--load_size", "20"], "at least 24 px that are multiples of 4; use --crop_size 24"),
    (["--netD", "multiscale", "--num_D", "3", "--crop_size", "64", "--load_size", "64"], "use --crop_size 96"),
    (["--netD", "n_layers", "--n_layers_D", "5", "--crop_size", "64", "--load_size", "64"], "use --crop_size 96"),
    (["--netD", "unet", "--crop_size", "36", "--load_size", "36"], "multiples of 16; use --crop_size 48"),
    (["--netD", "pixel", "--crop_size", "4", "--load_size", "4"], "at least 8 px"),  # the ResNet's padding
    (["--netG", "vit_siren", "--vit_heads", "5"], "--vit_heads 5 must divide --vit_dim 128"),
    (["--model", "pix2pix", "--lambda_L1", "0", "--adaptive_gan_weight"], "reconstruction term"),
])
def test_bad_combinations_name_the_flag(argv, message):
    with pytest.raises(OptionsError, match=re.escape(message)):
        parse_train_options(argv)


@pytest.mark.parametrize("argv,message", [
    (["--batch_size", "0"], "--batch_size: '0' is not an integer in [1, 4096]"),
    (["--n_critic", "0"], "--n_critic: '0' is not an integer in [1, 100]"),
    (["--vit_pixel_skip", "-1"], "--vit_pixel_skip: '-1' is not an integer in [0, 1024]"),
    (["--lambda_L1", "nan"], "--lambda_L1: 'nan' is not a finite number in [0, 1000000]"),
    (["--lambda_A", "inf"], "--lambda_A: 'inf' is not a finite number"),
    (["--lr", "inf"], "--lr: 'inf' is not a finite number in (0, 1]"),
    (["--lr", "0"], "--lr: '0' is not a finite number in (0, 1]"),
    (["--beta1", "5"], "--beta1: '5' is not a finite number in [0, 1)"),
    (["--lr_policy", "step", "--lr_decay_iters", "0"], "--lr_decay_iters: '0' is not an integer in [1,"),
    (["--vit_patch_size", "0"], "--vit_patch_size: '0' is not an integer in [1, 256]"),
    (["--num_D", "0"], "--num_D: '0' is not an integer in [1, 8]"),
    (["--ngf", "1e30"], "--ngf: '1e30' is not an integer in [1, 4096]"),
    (["--max_dataset_size", "0"], "--max_dataset_size: '0' is not a number >= 1"),
])
def test_values_out_of_range_stop_with_one_line_naming_flag_and_range(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_train_options(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,message", [
    (["--aspect_ratio", "0"], "--aspect_ratio: '0' is not a finite number in (0, 100]"),
    (["--html_page_size", "0"], "--html_page_size: '0' is not an integer in [1, 100000]"),
    (["--num_test", "-1"], "--num_test: '-1' is not an integer"),
])
def test_test_py_values_out_of_range_stop_at_start_up(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_test_options(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_test_py_checks_the_crop_size_against_the_generator():
    with pytest.raises(OptionsError, match="--crop_size 4: --netG resnet_6blocks needs .* use --crop_size 8"):
        parse_test_options(["--netG", "resnet_6blocks", "--crop_size", "4", "--load_size", "4"])


def test_classic_values_at_the_edges_of_the_ranges_still_parse():
    c = parse_train_options(["--display_id", "-1", "--pool_size", "0", "--lambda_identity", "0",
                             "--max_dataset_size", "inf", "--beta1", "0", "--print_freq", "0"])
    assert (c.display.display_id, c.optim.pool_size, c.data.max_dataset_size) == (-1, 0, None)


def test_unknown_network_lists_valid_names(capsys):
    with pytest.raises(SystemExit):
        parse_train_options(["--netG", "resnet_99blocks"])
    err = capsys.readouterr().err
    assert "--netG" in err and "resnet_9blocks" in err and "unet_256" in err


def test_config_round_trips_through_json_dict():
    c = parse_train_options(["--model", "csgan", "--diffaugment", "color,cutout"])
    assert train_config_from_dict(c.to_dict()).net == c.net
    again = train_config_from_dict(__import__("json").loads(c.to_json()))
    assert again.loss == c.loss and again.loss.diffaugment == ("color", "cutout")


def test_configs_from_before_the_pixel_skip_build_vit_siren_without_it():
    c = parse_train_options(["--netG", "vit_siren"])
    assert c.net.vit_pixel_skip == 32
    old = c.to_dict()
    del old["net"]["vit_pixel_skip"]
    assert train_config_from_dict(old).net.vit_pixel_skip == 0


def test_train_opt_text_marks_changed_defaults():
    c = parse_train_options(["--model", "pix2pix", "--lr", "0.001"])
    text = format_options(c.flags)
    lines = {line.partition(":")[0].strip(): line.split() for line in text.splitlines()[1:-1]}
    assert lines["lr"] == ["lr:", "0.001", "[default:", "0.0002]"]      # changed: value, then the default
    assert lines["beta1"] == ["beta1:", "0.5"] and lines["netG"] == ["netG:", "unet_256"]  # unchanged: no mark


def test_suffix_is_formatted_with_options():
    c = parse_train_options(["--name", "run", "--suffix", "{model}_{netG}", "--model", "pix2pix"])
    assert c.run.name == "run_pix2pix_unet_256"


def test_test_options_check_sizes_against_the_saved_generator(tmp_path):
    argv = ["--checkpoints_dir", str(tmp_path), "--name", "run", "--model", "pix2pix", "--crop_size", "64"]
    with pytest.raises(OptionsError, match="multiples of 256"):  # classic default unet_256
        parse_test_options(argv)
    saved = parse_train_options(["--model", "pix2pix", "--netG", "unet_64", "--crop_size", "64", "--load_size", "64"])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_config.json").write_text(saved.to_json())
    assert parse_test_options(argv).data.crop_size == 64
