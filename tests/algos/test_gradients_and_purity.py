"""Autograd checks on a tiny module (§6 terms carry gradient, shaping does not) and import purity."""

import subprocess
import sys

import torch

from mssr.algos import cross_modal_kl_loss, entropy_loss, policy_loss, sampled_token_entropy, shape_advantages


class TinyPolicy(torch.nn.Module):
    """Logits over a 6-token vocab from a per-position feature, with or without an 'image' feature."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.tok = torch.nn.Parameter(torch.randn(4, 6, generator=g))
        self.img = torch.nn.Parameter(torch.randn(6, generator=g))

    def logits(self, with_image: bool) -> torch.Tensor:
        x = self.tok.unsqueeze(0).expand(2, 4, 6)
        return x + self.img if with_image else x


def _grads(model, extra):
    model.zero_grad()
    tokens = torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2]])
    mask = torch.ones(2, 4)
    lp_img = torch.log_softmax(model.logits(True), -1).gather(-1, tokens[..., None]).squeeze(-1)
    lp_txt = torch.log_softmax(model.logits(False), -1).gather(-1, tokens[..., None]).squeeze(-1)
    adv = torch.tensor([[1.0] * 4, [-1.0] * 4])
    loss = policy_loss("ppo_clip", lp_img, lp_img.detach(), adv, mask).loss
    loss = loss + extra(lp_img, lp_txt, mask)
    loss.backward()
    return torch.cat([p.grad.flatten().clone() for p in model.parameters()])


def test_cross_modal_kl_changes_the_gradient():
    """Defect 3: the reference computed this term without gradient, so it never reached the loss."""
    m = TinyPolicy()
    base = _grads(m, lambda a, b, mask: 0.0)
    with_cm = _grads(m, lambda a, b, mask: 0.01 * cross_modal_kl_loss(a, b, mask))
    assert not torch.allclose(base, with_cm)
    # the gradient reaches the image-only parameter too (through the image-conditioned forward)
    m.zero_grad()
    cross_modal_kl_loss(
        torch.log_softmax(m.logits(True), -1)[..., 0],
        torch.log_softmax(m.logits(False), -1)[..., 0],
        torch.ones(2, 4),
    ).backward()
    assert m.img.grad.abs().sum() > 0
    # exact mode from logits carries gradient as well
    m.zero_grad()
    cross_modal_kl_loss(
        None, None, torch.ones(2, 4), logits_image=m.logits(True), logits_text=m.logits(False)
    ).backward()
    assert m.img.grad.abs().sum() > 0


def test_entropy_loss_changes_the_gradient():
    m = TinyPolicy()
    base = _grads(m, lambda a, b, mask: 0.0)
    with_ent = _grads(m, lambda a, b, mask: -0.01 * entropy_loss(a, mask))
    assert not torch.allclose(base, with_ent)


def test_shaping_term_has_no_gradient_path():
    m = TinyPolicy()
    tokens = torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2]])
    lp = torch.log_softmax(m.logits(True), -1).gather(-1, tokens[..., None]).squeeze(-1)
    h = sampled_token_entropy(lp)  # attached to the graph on purpose
    shaped = shape_advantages(torch.tensor([[1.0] * 4, [-1.0] * 4]), h, torch.ones(2, 4))
    assert not shaped.advantages.requires_grad
    loss = policy_loss("ppo_clip", lp, lp.detach(), shaped.advantages, torch.ones(2, 4)).loss
    (g_shaped,) = torch.autograd.grad(loss, m.tok, retain_graph=True)
    const = shaped.advantages.clone()
    loss2 = policy_loss("ppo_clip", lp, lp.detach(), const, torch.ones(2, 4)).loss
    (g_const,) = torch.autograd.grad(loss2, m.tok)
    assert torch.equal(g_shaped, g_const)


def test_algos_imports_only_torch():
    code = (
        "import sys, torch; before = set(sys.modules); import mssr.algos; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; print(sorted(new)); "
        "assert new <= {'mssr'}, new; assert 'transformers' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['mssr']"
