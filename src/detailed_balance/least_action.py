"""The least-action potential V_LA of a transition kernel, draw by draw.

Song, Cao, Luo & Zhu (arXiv:2512.10047) estimate the potential by minimising the action::

    S[V; T] = (1/|states|) Σ_{f→g} T(g←f) K(V(f) − V(g))

over the observed arcs, with a convex K such that K'(x) = K'(−x)·e^{−x}. Whenever detailed balance
log T(g←f) − log T(f←g) = V(f) − V(g) holds exactly on every arc (both directions present), the
true V is a stationary point, and convexity makes it the minimum (up to one constant per
connected component). Here the minimiser is a damped Newton method with conjugate-gradient
steps and jax gradients, jitted and vmapped over posterior draws of T, so a posterior over T
gives a posterior over V_LA and S_min.

Where the data are one-way the action has no minimum: if an arc leaves a strongly connected
block of the arc graph and never comes back, moving the whole upstream block up lowers S for
ever. We do not clip. The minimiser works on the arcs inside each strongly connected block
(where the minimum exists), and reports the states whose V relative to the reference block runs
off to +∞ (upstream: they only flow into it), −∞ (downstream) or is undetermined (neither).

Gauge: V has mean zero over the reference block of each support-graph component (its largest
strongly connected block), the analogue of :data:`detailed_balance.modeldata.GAUGE` (which uses
the largest two-way component). Pass ``gauge=`` to use modeldata's weights instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from .errors import DetailedBalanceError
from .graph import component_labels
from .kernel import TransitionKernel

GAUGE = (
    "V_LA has mean zero over the reference block of each support-graph component: its largest "
    "strongly connected set of arcs (where the action has a finite minimum)"
)

#: largest change of V (nats) in one Newton step
_MAX_STEP = 4.0

#: draws solved together (vmapped) inside one batch
_BATCH = 8

#: argument at which K(+∞) is evaluated for arcs whose potential difference runs away
_X_INF = 80.0


class KernelError(DetailedBalanceError, ValueError):
    """A user-supplied K does not satisfy K'(x) = K'(−x)·e^{−x} or is not convex."""


# ---- the kernels K --------------------------------------------------------------------------
def k_exp(x):
    """K(x) = exp(−x/2), the paper's main-text kernel.

    Parameters
    ----------
    x : float or array
        Argument of K.

    Returns
    -------
    float or array
        ``exp(-x/2)``.

    Examples
    --------
    >>> float(k_exp(0.0))
    1.0
    """
    import jax.numpy as jnp

    return jnp.exp(-0.5 * x)


def k_softplus(x):
    """K(x) = log(1 + e^{−x}), the kernel of the paper's released code (a Bradley–Terry loss).

    Parameters
    ----------
    x : float or array
        Argument of K.

    Returns
    -------
    float or array
        ``log(1 + exp(-x))``.

    Examples
    --------
    >>> round(float(k_softplus(0.0)), 6)  # log 2
    0.693147
    """
    import jax.numpy as jnp

    return jnp.logaddexp(0.0, -x)


KERNELS: dict[str, Callable] = {"exp": k_exp, "softplus": k_softplus}


def resolve_kernel(K: str | Callable) -> tuple[str, Callable]:
    """Name and function of K: ``"exp"``, ``"softplus"`` or a checked jax-differentiable K.

    Parameters
    ----------
    K : "exp", "softplus" or callable
        A kernel name or a jax-differentiable K(x) (checked by :func:`check_kernel`).

    Returns
    -------
    name : str
        The kernel's name (a callable's ``__name__``, else ``"custom"``).
    func : callable
        K itself.
    """
    if isinstance(K, str):
        if K not in KERNELS:
            raise KernelError(f"unknown kernel {K!r} (use 'exp', 'softplus' or a function)")
        return K, KERNELS[K]
    if not callable(K):
        raise KernelError("K must be 'exp', 'softplus' or a jax-differentiable function of x")
    check_kernel(K)
    return getattr(K, "__name__", "custom"), K


def check_kernel(
    K: Callable, *, lo: float = -12.0, hi: float = 12.0, n: int = 241, rtol: float = 1e-6
) -> None:
    """Check K'(x) = K'(−x)·e^{−x} and K'' ≥ 0 on a grid; raise :class:`KernelError` if not.

    The symmetry makes the true V a stationary point of the action under detailed balance, and
    convexity makes that point the minimum (the paper's condition on K).

    Parameters
    ----------
    K : callable
        A jax-differentiable K(x).
    lo, hi, n : float, float, int
        The grid of x on which both conditions are checked.
    rtol : float
        Relative tolerance of the symmetry condition.

    Raises
    ------
    KernelError
        Naming the first x where a condition fails.

    Examples
    --------
    >>> check_kernel(k_exp)  # the paper's kernel passes
    >>> check_kernel(lambda x: x**2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detailed_balance.least_action.KernelError: K fails K'(x) = K'(-x)·exp(-x): ...
    """
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        x = jnp.linspace(lo, hi, n)
        try:
            d1 = jax.vmap(jax.grad(lambda t: jnp.asarray(K(t), dtype=jnp.float64)))(x)
            d2 = jax.vmap(jax.grad(jax.grad(lambda t: jnp.asarray(K(t), dtype=jnp.float64))))(x)
        except Exception as exc:  # a non-jax or non-scalar K
            raise KernelError(f"K is not a jax-differentiable scalar function: {exc}") from None
        lhs, rhs = np.asarray(d1), np.asarray(d1[::-1] * jnp.exp(-x))
        d2 = np.asarray(d2)
    if not (np.all(np.isfinite(lhs)) and np.all(np.isfinite(d2))):
        raise KernelError(f"K has non-finite derivatives on [{lo}, {hi}]")
    err = np.abs(lhs - rhs) / (np.abs(lhs) + np.abs(rhs) + 1e-300)
    k = int(np.argmax(err))
    if err[k] > rtol:
        raise KernelError(
            f"K fails K'(x) = K'(-x)·exp(-x): at x = {float(x[k]):.3g}, K'(x) = {lhs[k]:.6g} but "
            f"K'(-x)·exp(-x) = {rhs[k]:.6g} (relative error {err[k]:.2g} > {rtol:g})"
        )
    scale = np.abs(d2).max()
    if d2.min() < -1e-9 * scale:
        k = int(np.argmin(d2))
        raise KernelError(f"K is not convex: K''({float(x[k]):.3g}) = {d2[k]:.3g} < 0")


# ---- result ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LeastActionResult:
    """Least-action potentials of one kernel or of each posterior draw.

    Attributes
    ----------
    states : tuple of str
    V : (S,) or (draws, S) array
        V_LA in the gauge of :data:`GAUGE` (or the ``gauge`` passed). States outside the
        reference block of their component are +inf (they only flow into it: unbounded above),
        -inf (only reached from it) or nan (no directed path either way): never clipped.
    V_block : same shape
        Finite V inside each strongly connected block, each block with mean zero.
    S_min : () or (draws,) array
        Infimum of the action (arcs between blocks contribute T·K(+∞)).
    block, component : (S,) int arrays
        Strongly connected block of the arc graph; support-graph component.
    reference : (S,) bool
        States in the reference block of their component (V finite and identified).
    direction : (S,) int
        +1 / −1 / 0 for states running off to +∞ / −∞ / undetermined; 0 on reference states.
    converged : () or (draws,) bool ;  grad_norm : max abs(∂S/∂V) at the end ;  iterations
    kernel_name : str ;  n_cross_arcs : arcs between blocks (the one-way part of the data)
    """

    states: tuple[str, ...]
    V: np.ndarray
    V_block: np.ndarray
    S_min: np.ndarray
    block: np.ndarray
    component: np.ndarray
    reference: np.ndarray
    direction: np.ndarray
    converged: np.ndarray
    grad_norm: np.ndarray
    iterations: np.ndarray
    kernel_name: str
    n_cross_arcs: int

    @property
    def runaway(self) -> np.ndarray:
        """States whose V is unbounded (outside the reference block of their component)."""
        return ~self.reference

    @property
    def runaway_states(self) -> list[str]:
        return [s for s, r in zip(self.states, self.runaway, strict=True) if r]

    @property
    def n_draws(self) -> int | None:
        return None if self.V.ndim == 1 else self.V.shape[0]

    def summary(self) -> str:
        """One paragraph saying what was fitted, and what is unbounded."""
        n_run = int(self.runaway.sum())
        up, down = int((self.direction > 0).sum()), int((self.direction < 0).sum())
        s = np.atleast_1d(self.S_min)
        text = (
            f"least action (K = {self.kernel_name}) over {len(self.states)} states"
            + (f", {self.n_draws} draws" if self.n_draws else "")
            + f": S_min = {np.mean(s):.4g}"
            + (f" (sd {np.std(s):.2g})" if s.size > 1 else "")
            + ("; converged." if np.all(self.converged) else "; NOT converged in every draw.")
        )
        if n_run:
            text += (
                f" {n_run} states lie outside the reference block of their component "
                f"({self.n_cross_arcs} one-way arcs between blocks): V is unbounded there "
                f"({up} run to +inf, {down} to -inf, {n_run - up - down} undetermined); "
                "not clipped."
            )
        return text


# ---- structure: blocks, references, directions ----------------------------------------------
def _structure(n: int, src: np.ndarray, tgt: np.ndarray):
    """Strong blocks, support components, reference block per component, runaway direction."""
    adj = coo_matrix((np.ones(len(src)), (src, tgt)), shape=(n, n)).tocsr()
    _, block = connected_components(adj, directed=True, connection="strong")
    comp = component_labels(n, np.minimum(src, tgt), np.maximum(src, tgt))
    n_blocks = int(block.max()) + 1
    sizes = np.bincount(block, minlength=n_blocks)
    cross = block[src] != block[tgt]
    bg = coo_matrix(
        (np.ones(int(cross.sum())), (block[src][cross], block[tgt][cross])),
        shape=(n_blocks, n_blocks),
    ).tocsr()
    reference = np.zeros(n, dtype=bool)
    direction = np.zeros(n, dtype=np.int64)
    for c in np.unique(comp):
        members = np.flatnonzero(comp == c)
        blocks = np.unique(block[members])
        ref = blocks[np.argmax(sizes[blocks])]
        reference[members[block[members] == ref]] = True
        if len(blocks) == 1:
            continue
        downstream = breadth_first_order(bg, ref, directed=True, return_predecessors=False)
        upstream = breadth_first_order(bg.T.tocsr(), ref, directed=True, return_predecessors=False)
        direction[np.isin(block, upstream) & (block != ref)] = 1
        direction[np.isin(block, downstream) & (block != ref)] = -1
    return block, comp, reference, direction, cross


# ---- the minimiser ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _solver(K: Callable, n: int, max_iter: int, tol: float):
    """A jitted damped-Newton solver of the action on within-block arcs, vmapped over draws of w.

    Cached per (K, padded size, settings), so fits of similar size reuse one compilation. ``n``
    is the padded number of states (padding states sit alone in their own blocks, pinned at 0);
    ``n_real`` (dynamic) is the number of states that normalises the action.
    """
    import jax
    import jax.numpy as jnp

    dK = jax.vmap(jax.grad(K))
    d2K = jax.vmap(jax.grad(jax.grad(K)))
    steps = 0.5 ** jnp.arange(20.0)

    n_blocks = n

    def solve_one(w, v0, src, tgt, block, n_real):
        size = jnp.maximum(jax.ops.segment_sum(jnp.ones(n), block, num_segments=n_blocks), 1.0)

        def action(v, w):
            return jnp.sum(w * K(v[src] - v[tgt])) / n_real

        def block_mean(v):
            return jax.ops.segment_sum(v, block, num_segments=n_blocks) / size

        # gauge penalty (lam/2)·Σ_b |b|·mean_b(V)² fixes each block's constant without touching S
        lam = jnp.sum(w * d2K(jnp.zeros_like(w))) / n_real / n_real + 1e-300

        def objective(v):
            return action(v, w) + 0.5 * lam * jnp.sum(size * block_mean(v) ** 2)

        grad = jax.grad(objective)
        g0 = jnp.linalg.norm(grad(v0)) + 1e-300  # unpreconditioned: only sets the first tolerance

        def body(state):
            v, it, last = state
            g = grad(v)
            # the Hessian is a weighted graph Laplacian plus the rank-one gauge terms
            h_arc = w * d2K(v[src] - v[tgt]) / n_real
            diag = (
                jax.ops.segment_sum(h_arc, src, num_segments=n)
                + jax.ops.segment_sum(h_arc, tgt, num_segments=n)
                + lam / size[block]
            )

            def hvp(u):
                du = h_arc * (u[src] - u[tgt])
                lap = jax.ops.segment_sum(du, src, num_segments=n) - jax.ops.segment_sum(
                    du, tgt, num_segments=n
                )
                return lap + lam * block_mean(u)[block]

            # inexact Newton: solve to a relative residual that shrinks with the gradient
            # (Eisenstat-Walker), which keeps fast local convergence at a fraction of the work
            eta = jnp.clip(jnp.linalg.norm(g) / g0, 1e-10, 0.1)
            d = _pcg(hvp, -g, diag, eta, 4 * n)
            # at most _MAX_STEP nats per state per iteration: where K's curvature vanishes (the
            # linear tail of softplus) a full Newton step can shoot far past the minimum
            d = d * jnp.minimum(1.0, _MAX_STEP / (jnp.max(jnp.abs(d)) + 1e-300))
            f0, slope = objective(v), jnp.dot(g, d)
            trial = jax.vmap(lambda t: objective(v + t * d))(steps)
            # Armijo on S; or, where S changes below its rounding (arcs with tiny T), a step
            # that lowers the preconditioned gradient norm (S is convex, so that is progress)
            g_trial = jax.vmap(lambda t: jnp.linalg.norm(grad(v + t * d) / jnp.sqrt(diag)))(steps)
            flat = trial <= f0 + 1e-12 * jnp.abs(f0)
            ok = jnp.isfinite(trial) & (
                (trial <= f0 + 1e-4 * steps * slope)
                | (flat & (g_trial < jnp.linalg.norm(g / jnp.sqrt(diag))))
            )
            t = jnp.where(jnp.any(ok), steps[jnp.argmax(ok)], 0.0)
            step = t * d
            v = v + step
            v = v - block_mean(v)[block]
            # no acceptable step: stop here and let the gradient test decide convergence
            return v, it + 1, jnp.where(jnp.any(ok), jnp.max(jnp.abs(step)), -1.0)

        def cond(state):
            _, it, last = state
            return (it < max_iter) & (last > tol)

        v, it, last = jax.lax.while_loop(cond, body, (v0, 0, jnp.inf))
        x = v[src] - v[tgt]
        g = jax.grad(action)(v, w)
        scale = jnp.sum(w * jnp.abs(dK(x))) / n_real + 1e-300
        g_max = jnp.max(jnp.abs(g), initial=0.0)
        converged = ((last >= 0) & (last <= tol)) | (g_max <= 1e-8 * scale)
        return v, action(v, w), g_max, it, converged

    # called on batches of ``batch`` draws: a vmapped while loop runs every draw of a batch as
    # long as its slowest one, so small batches waste little, and one shape means one compilation
    return jax.jit(jax.vmap(solve_one, in_axes=(0, 0, None, None, None, None)))


def minimise_action(
    kernel: TransitionKernel,
    K: str | Callable = "exp",
    *,
    gauge: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    progress: bool = False,
) -> LeastActionResult:
    """Minimise S[V; T] for a kernel, or for every posterior draw of it at once.

    Parameters
    ----------
    kernel : TransitionKernel
        log T on sparse arcs; a leading draws axis gives a posterior over V_LA and S_min.
        Arcs with T = 0 in every draw are ignored.
    K : "exp", "softplus" or callable
        A user K must be jax-differentiable; it is checked by :func:`check_kernel`.
    gauge : (group, weight), optional
        Re-centre V so each group's ``weight``-weighted mean is zero, e.g.
        ``modeldata.gauge_reference(counts)[:2]``; the weights must sit on reference states.
    max_iter, tol : Newton iterations and the step size (in V) below which a draw has converged.
    progress : show a progress bar over batches of draws.

    Returns
    -------
    LeastActionResult
    """
    import jax

    name, fn = resolve_kernel(K)
    log_t = np.asarray(kernel.log_prob, dtype=float)
    single = log_t.ndim == 1
    log_t = np.atleast_2d(log_t)
    live = np.isfinite(log_t).any(axis=0)
    src, tgt = np.asarray(kernel.source)[live], np.asarray(kernel.target)[live]
    w_all = np.exp(log_t[:, live])
    n = kernel.n_states
    block, comp, reference, direction, cross = _structure(n, src, tgt)
    inside = ~cross
    n_draws = len(w_all)
    # one kernel is solved alone: a batch of _BATCH copies would do _BATCH times the work
    batch = 1 if n_draws == 1 else _BATCH
    w_in, s_in_arc, t_in_arc, blk = _pad(w_all[:, inside], src[inside], tgt[inside], block, batch)
    with jax.enable_x64(True):
        solver = _solver(fn, len(blk), max_iter, tol)
        args = (s_in_arc, t_in_arc, blk, float(n))
        v0 = np.zeros((batch, len(blk)))
        if n_draws > 1:
            # warm start every draw at the minimiser for the posterior-mean kernel: a few Newton
            # steps then finish each draw
            w_mean = np.broadcast_to(w_in[:n_draws].mean(axis=0), (batch, w_in.shape[1]))
            v0[:] = np.asarray(solver(w_mean, v0, *args)[0])[0]
        batches = range(0, len(w_in), batch)
        if progress and len(batches) > 1:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="least action", unit="batch")
        parts = [solver(w_in[b : b + batch], v0, *args) for b in batches]
        v_block, s_in, gnorm, iters, conv = (
            np.concatenate([np.asarray(p[k]) for p in parts])[:n_draws] for k in range(5)
        )
        v_block = v_block[:, :n]
        k_inf = float(fn(jax.numpy.asarray(_X_INF)))
    s_min = s_in + w_all[:, cross].sum(axis=1) * k_inf / n
    v = _place_runaways(v_block, block, comp, reference, direction)
    if gauge is not None:
        v = _regauge(v, *gauge, reference)
    out = dict(V=v, V_block=v_block, S_min=s_min, converged=conv, grad_norm=gnorm, iterations=iters)
    if single:
        out = {k: a[0] for k, a in out.items()}
    return LeastActionResult(
        states=tuple(kernel.states),
        block=block,
        component=comp,
        reference=reference,
        direction=direction,
        kernel_name=name,
        n_cross_arcs=int(cross.sum()),
        **out,
    )


def _pcg(matvec, b, diag, rtol, maxiter: int):
    """Jacobi-preconditioned conjugate gradients (jax) to ``|D^-1/2 r| <= rtol·|D^-1/2 b|``.

    The residual is measured in the preconditioned norm: states with tiny weights (arcs with
    tiny T) then get as accurate a step as the others, instead of a large error in V.
    """
    import jax
    import jax.numpy as jnp

    stop = rtol**2 * jnp.dot(b, b / diag)

    def cond(state):
        _, _, _, rz, k = state
        return (k < maxiter) & (rz > stop)

    def body(state):
        x, r, p, rz, k = state
        ap = matvec(p)
        pap = jnp.dot(p, ap)
        alpha = jnp.where(pap > 0, rz / jnp.where(pap > 0, pap, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        z = r / diag
        rz_new = jnp.dot(r, z)
        p = z + jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1.0), 0.0) * p
        return x, r, p, rz_new, k + 1

    z = b / diag
    init = (jnp.zeros_like(b), b, z, jnp.dot(b, z), 0)
    return jax.lax.while_loop(cond, body, init)[0]


def _bucket(m: int) -> int:
    """Round up to a power of two (at least 16) up to 512, above to one of 8 sizes per octave:
    few compilations for small problems, at most 1/8 padding waste for large ones (where a
    power of two was measured to cost up to 4x)."""
    if m <= 512:
        return max(16, 1 << (m - 1).bit_length())
    step = 1 << ((m - 1).bit_length() - 4)
    return -(-m // step) * step


def _pad(w, src, tgt, block, batch: int = _BATCH):
    """Pad arcs and states to a few sizes so data of similar size share one compiled solver, and
    draws to whole batches: extra arcs are zero-weight self-arcs (nothing in S or its
    derivatives), extra states sit alone in new blocks, extra draws repeat the last one (their
    results are dropped)."""
    m, n, d = len(src), len(block), len(w)
    # states: pad only small problems (padding states was measured to slow large ones ~4x)
    n_pad = _bucket(n) if n <= 64 else n
    new_blocks = block.max() + 1 + np.arange(n_pad - n)
    w = np.pad(w, ((0, -d % batch), (0, 0)), mode="edge")
    w = np.pad(w, ((0, 0), (0, _bucket(m) - m)))
    # spread the padding self-arcs over all states: many scatter-adds into one index are slow
    extra = np.arange(_bucket(m) - m) % n_pad
    return (
        w,
        np.concatenate([src, extra]),
        np.concatenate([tgt, extra]),
        np.concatenate([block, new_blocks]),
    )


def _place_runaways(v_block, block, comp, reference, direction):
    """V in the reference gauge: reference blocks keep their (mean-zero) values, others ±inf/nan."""
    v = v_block.copy()
    run = ~reference
    v[:, run] = np.where(direction[run] > 0, np.inf, np.where(direction[run] < 0, -np.inf, np.nan))
    return v


def _regauge(v, group, weight, reference):
    """Shift finite V so each group's weighted mean is zero (modeldata's convention)."""
    group, weight = np.asarray(group), np.asarray(weight, dtype=float)
    if np.any(weight[~reference] != 0):
        raise DetailedBalanceError(
            "gauge weights sit on states whose least-action V is unbounded; use the default gauge"
        )
    finite = np.where(np.isfinite(v), v, 0.0)
    n_groups = int(group.max()) + 1
    onehot = np.zeros((len(group), n_groups))
    onehot[np.arange(len(group)), group] = weight
    offset = finite @ onehot
    has_ref = np.bincount(group, weights=weight, minlength=n_groups) > 0
    return v - np.where(has_ref, offset, 0.0)[:, group]


def equilibrium_discrepancy(result: LeastActionResult, V, group, weight) -> float:
    """Max abs(V_LA − V) over draws and reference states, both in the gauge ``(group, weight)``.

    Under a reversible model (detailed balance exact on every arc, both directions present)
    this is zero up to the solver's precision: the consistency check of the least-action
    estimator against the model's equilibrium potential ``V`` (same draws axis as ``result.V``).

    Parameters
    ----------
    result : LeastActionResult
        Least-action potentials (one kernel or per draw).
    V : (S,) or (draws, S) array
        The model's equilibrium potential.
    group, weight : (S,) arrays
        The gauge both potentials are centred in (see :func:`minimise_action`).

    Returns
    -------
    float
        The largest absolute difference.
    """
    from .modeldata import apply_gauge

    ref = result.reference
    mine = _regauge(np.atleast_2d(result.V), group, weight, ref)
    V = np.atleast_2d(np.asarray(V, dtype=float))
    theirs = apply_gauge(V, np.asarray(group), np.asarray(weight))
    return float(np.max(np.abs(mine[:, ref] - theirs[:, ref])))


def action(kernel: TransitionKernel, V: np.ndarray, K: str | Callable = "exp") -> np.ndarray:
    """S[V; T] on every arc (numpy; for checks and plots). ``V`` is (S,) or (draws, S).

    Parameters
    ----------
    kernel : TransitionKernel
        log T on sparse arcs (optionally with a draws axis).
    V : (S,) or (draws, S) array
        The potential.
    K : "exp", "softplus" or callable
        The kernel of the action, as in :func:`minimise_action`.

    Returns
    -------
    () or (draws,) array
        ``sum(T * K(V[source] - V[target])) / n_states`` over the arcs.
    """
    import jax

    _, fn = resolve_kernel(K)
    log_t = np.asarray(kernel.log_prob, dtype=float)
    V = np.asarray(V, dtype=float)
    with jax.enable_x64(True):
        x = V[..., kernel.source] - V[..., kernel.target]
        terms = np.exp(log_t) * np.asarray(fn(jax.numpy.asarray(x)))
    return terms.sum(axis=-1) / kernel.n_states
