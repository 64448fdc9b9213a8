"""bf16 weights with their lower 16 bits beside them (huggingtweets/master.py): the fp32 weight is kept
exactly, the optimizer is AdamW (as one C loop built for the host, or torch's eager ops where there is no C
compiler), training saves the fp32 model it trained, a resumed run ends where an uninterrupted one ends, and a
weight costs 10 bytes of training state instead of 16."""

import shutil

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

import huggingtweets as ht
from huggingtweets import master


def test_a_bf16_weight_and_its_lower_bits_are_the_fp32_weight():
    torch.manual_seed(0)
    weights = torch.cat([torch.randn(100_000) * 0.05, torch.randn(1000) * 1e4,
                         torch.tensor([0.0, -0.0, 1.0, -1.0, 1e-40, -1e-40, 3.0e38, -3.0e38, 1 + 2**-8, -(1 + 2**-8)])])
    high = torch.empty(weights.shape, dtype=torch.bfloat16)
    low = torch.empty(weights.shape, dtype=torch.int16)
    bits = torch.empty(weights.shape, dtype=torch.int32)
    master.split(weights.clone(), high, low, bits)
    assert torch.equal(master.join(high, low, torch.empty_like(weights), bits).view(torch.int32),
                       weights.view(torch.int32))
    # the bf16 weight is the fp32 one rounded to nearest, as autocast rounds it, except exactly half way
    # (1 + 2**-8: autocast goes to even, down; split away from zero, up)
    ties = (weights.view(torch.int32) & 0xFFFF) == 0x8000
    assert torch.equal(high[~ties], weights[~ties].to(torch.bfloat16))
    assert high[-2] == 1 + 2**-7 and high[-1] == -(1 + 2**-7)


HAS_COMPILER = any(shutil.which(c) for c in ("cc", "gcc", "clang"))


@pytest.fixture(params=["compiled", "eager"])
def update(request, monkeypatch):
    """The optimizer's update of bf16 weights: the C loop (master_adamw.c) or torch's eager slices."""
    if request.param == "compiled":
        if not HAS_COMPILER:
            pytest.skip("no C compiler here: the eager slices are the update")
        assert master.compiled_update() is not None
    else:
        monkeypatch.setattr(master, "_kernel", None)
    return request.param


def test_the_optimizer_is_adamw(update):
    torch.manual_seed(0)
    reference = torch.nn.Parameter(torch.randn(3 * master.SLICE + 7) * 0.05)  # several slices, the last one short
    start = reference.detach().clone()
    expected = torch.optim.AdamW([reference], lr=1e-3, weight_decay=0.1, fused=True)
    high, low = master.bf16_and_lower_bits(reference.detach())
    weight, norm = torch.nn.Parameter(high), torch.nn.Parameter(torch.randn(64))  # a norm's weight stays fp32
    norm_reference = torch.nn.Parameter(norm.detach().clone())
    expected.add_param_group({"params": [norm_reference]})
    ours = master.MasterAdamW([weight, norm], {weight: low}, lr=1e-3, weight_decay=0.1)
    for _ in range(10):
        grad = torch.randn(reference.shape).to(torch.bfloat16)
        reference.grad, weight.grad = grad.float(), grad
        norm_reference.grad = norm.grad = torch.randn(64)
        expected.step()
        ours.step()
    assert torch.equal(norm, norm_reference)  # fp32: torch's AdamW to the bit
    # bf16 weights: the update in fp32 on the exact weight; only the first moment is held in bf16
    trained = master.join(weight.detach(), low, torch.empty(reference.shape),
                          torch.empty(reference.shape, dtype=torch.int32))
    assert (trained - reference.detach()).abs().max() < 0.01 * 10 * 1e-3  # a hundredth of ten steps' reach
    # and the weights did move: AdamW's steps are about the learning rate each
    assert weight.dtype == torch.bfloat16 and (trained - start).abs().max() > 5 * 1e-3


def test_the_c_loop_updates_as_the_eager_ops_do(monkeypatch):
    if not HAS_COMPILER:
        pytest.skip("no C compiler here")
    torch.manual_seed(0)
    size = 2 * master.SLICE + 1000
    start = torch.randn(size) * 0.05
    runs = {}
    for name, kernel in [("compiled", master.compiled_update()), ("eager", None)]:
        monkeypatch.setattr(master, "_kernel", kernel)
        high, low = master.bf16_and_lower_bits(start)
        weight = torch.nn.Parameter(high)
        optimizer = master.MasterAdamW([weight], {weight: low}, lr=1e-3, weight_decay=0.1)
        torch.manual_seed(1)
        for _ in range(5):
            weight.grad = torch.randn(size).to(torch.bfloat16)
            optimizer.step()
        runs[name] = (master.join(weight.detach(), low, torch.empty(size), torch.empty(size, dtype=torch.int32)),
                      optimizer.state[weight]["exp_avg"], optimizer.state[weight]["exp_avg_sq"])
    (w1, m1, v1), (w2, m2, v2) = runs["compiled"], runs["eager"]
    # the same fp32 arithmetic but for the order of a few operations inside torch's kernel: a few ulps apart
    assert (w1 - w2).abs().max() < 1e-7 and (w1 == w2).float().mean() > 0.5
    assert (m1.float() - m2.float()).abs().max() <= 2**-8 * m2.float().abs().max()
    assert torch.allclose(v1, v2, rtol=1e-6, atol=0)


def test_the_c_loop_gives_the_same_bits_on_any_number_of_threads():
    if not HAS_COMPILER:
        pytest.skip("no C compiler here")
    torch.manual_seed(0)
    size = 3 * master.SLICE + 5  # slices shared out among the threads, the last one short
    start, grads = torch.randn(size) * 0.05, [torch.randn(size).to(torch.bfloat16) for _ in range(3)]
    runs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            high, low = master.bf16_and_lower_bits(start)
            weight = torch.nn.Parameter(high)
            optimizer = master.MasterAdamW([weight], {weight: low}, lr=1e-3)
            for grad in grads:
                weight.grad = grad.clone()
                optimizer.step()
            runs.append((weight.detach().view(torch.int16), low, optimizer.state[weight]["exp_avg"].view(torch.int16),
                         optimizer.state[weight]["exp_avg_sq"]))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert not torch.equal(runs[0][0], start.to(torch.bfloat16).view(torch.int16))  # and the weights moved


def test_the_c_loop_is_built_once_a_host_and_its_absence_is_not_an_error(monkeypatch, tmp_path):
    if not HAS_COMPILER:
        pytest.skip("no C compiler here")
    monkeypatch.setenv("HUGGINGTWEETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(master, "_kernel", False)
    assert master.compiled_update() is not None
    built = list((tmp_path / "cache" / "kernels").iterdir())
    assert [f.suffix for f in built] == [".so"]
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(master, "_kernel", False)  # another process on the same host: loaded, not built again
    assert master.compiled_update() is not None and built[0].stat().st_mtime_ns == stamp
    # A compiler that fails (or none): the eager slices, and nothing half-written left behind
    monkeypatch.setenv("CC", "false")
    monkeypatch.setattr(master, "_kernel", False)
    assert master.compiled_update() is None
    assert list((tmp_path / "cache" / "kernels").iterdir()) == built
    # and a cache that cannot be written (here a file where the folder should be): the eager slices too
    monkeypatch.delenv("CC")
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("HUGGINGTWEETS_CACHE", str(tmp_path / "not-a-folder"))
    monkeypatch.setattr(master, "_kernel", False)
    assert master.compiled_update() is None
    assert master.why_eager() == (f"the cache folder {tmp_path / 'not-a-folder' / 'kernels'} cannot be written; "
                                  "set HUGGINGTWEETS_CACHE to a folder that can")


def trained(tmp_path, model, name, **settings):
    settings = ht.Settings(sources=["sample"], model=str(model), work=tmp_path / name, precision="bf16",
                           learning_rate=1e-2, **settings)
    metrics = ht.train(settings, say=lambda _: None, write_card=False)
    folder = tmp_path / name / "sample" / "model"
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
    return metrics, weights, folder


def test_training_in_bf16_saves_the_fp32_model_autocast_would_train(tmp_path, tiny_llama, monkeypatch):
    ours, ours_weights, folder = trained(tmp_path, tiny_llama, "bf16-weights", max_steps=4)
    monkeypatch.setattr(master, "fits", lambda *a, **k: False)  # fp32 weights under autocast
    theirs, theirs_weights, _ = trained(tmp_path, tiny_llama, "autocast", max_steps=4)
    assert theirs["optimizer"] == "adamw_torch_fused"
    assert {w.dtype for w in ours_weights.values()} == {torch.float32}
    assert ours["eval_loss_after"] < ours["eval_loss_before"]
    # the same numbers multiplied, but for the embedding rows: autocast looks them up in fp32
    assert ours["eval_loss_before"] == pytest.approx(theirs["eval_loss_before"], rel=1e-5)
    assert ours["eval_loss_after"] == pytest.approx(theirs["eval_loss_after"], rel=0.01)
    # each weight moved as autocast moved it (cosine 0.9998-0.99998, sizes within 0.1%, when measured). AdamW's
    # steps are lr in size whatever the gradient, so a gradient near zero that rounds the other way moves a weight
    # 2 lr the other way: the updates are compared whole
    with safe_open(str(tiny_llama / "model.safetensors"), "pt") as f:
        start = {k: f.get_tensor(k) for k in f.keys()}
    for name, weight in theirs_weights.items():
        ours_update, their_update = ours_weights[name] - start[name], weight - start[name]
        cosine = torch.nn.functional.cosine_similarity(ours_update.flatten(), their_update.flatten(), dim=0)
        assert cosine > 0.999 and ours_update.norm() / their_update.norm() == pytest.approx(1, abs=0.01), name
    # the bot loads and writes as any model does: nothing of the training is left on it
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32 and not model.get_input_embeddings()._forward_hooks


def test_a_resumed_run_ends_where_an_uninterrupted_one_ends(tmp_path, tiny_llama, update):
    # The last 16 bits of each weight and the moments live in the optimizer's checkpoint: lose or round any of
    # them and the resumed run's weights differ.
    metrics, uninterrupted, _ = trained(tmp_path, tiny_llama, "whole", max_steps=8, checkpoint_minutes=0)
    assert metrics["optimizer"] == {"compiled": "master_adamw_c", "eager": "master_adamw_eager"}[update]

    class Stop(Exception):
        pass

    def stop_after_step_5(entry):
        if entry.get("step") == 5:
            raise Stop

    settings = ht.Settings(sources=["sample"], model=str(tiny_llama), work=tmp_path / "resumed", precision="bf16",
                           learning_rate=1e-2, max_steps=8, checkpoint_minutes=0)
    with pytest.raises(Stop):
        ht.train(settings, say=lambda _: None, write_card=False, on_log=stop_after_step_5)
    _, resumed, _ = trained(tmp_path, tiny_llama, "resumed", max_steps=8, checkpoint_minutes=0)
    assert resumed.keys() == uninterrupted.keys()
    for name, weight in uninterrupted.items():
        assert torch.equal(resumed[name], weight), name


def test_a_weight_costs_10_bytes_of_training_state(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    master.to_bf16_weights(model)
    optimizer = master.MasterAdamW(model.parameters(), master.lows_of(model))
    weights = sum(p.numel() for p in model.parameters())
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if t.dim())
    held = sum(p.numel() * p.element_size() for p in model.parameters()) + state
    assert held < 10.1 * weights  # bf16 weight 2, its lower bits 2, first moment 2, second 4 (norms: 12 in fp32)


def test_it_is_used_only_where_measured(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert master.fits(model, "bf16", on_gpu=False, world=1)
    assert not master.fits(model, "fp32", on_gpu=False, world=1)
    assert not master.fits(model, "bf16", on_gpu=True, world=1)
    assert not master.fits(model, "bf16", on_gpu=False, world=2)


def test_a_run_without_a_c_compiler_says_so_and_what_to_do(tmp_path, tiny_llama, monkeypatch):
    # The eager update is three times slower: a user on a host without a compiler (a bare macOS, Windows) is told
    # why and how to get the fast one, rather than only metrics.json's `optimizer` saying it.
    def lines(name: str) -> list[str]:
        said: list[str] = []
        settings = ht.Settings(sources=["sample"], model=str(tiny_llama), work=tmp_path / name, precision="bf16",
                               max_steps=1)
        metrics = ht.train(settings, say=said.append, write_card=False)
        # the precision's own reason stays what metrics.json records, whatever the optimizer line says
        assert metrics["precision"] == "bf16" and metrics["precision_reason"] == "as asked"
        assert "Precision: bf16 (as asked); training on " in "\n".join(said)
        return [line for line in said if "C compiler" in line]

    monkeypatch.setenv("HUGGINGTWEETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(master, "_kernel", False)
    assert lines("none") == ["Optimizer: torch's ops, about 3x slower than its C loop: no C compiler was found "
                             "(no-such-compiler); install gcc or clang, or set CC to one"]
    monkeypatch.setenv("CC", "false")  # there, but it fails
    monkeypatch.setattr(master, "_kernel", False)
    assert lines("fails") == ["Optimizer: torch's ops, about 3x slower than its C loop: the C compiler (false) "
                              "could not build it; set CC to another compiler (gcc or clang)"]
    if HAS_COMPILER:
        monkeypatch.delenv("CC")
        monkeypatch.setattr(master, "_kernel", False)
        assert lines("built") == []
