"""A Gaussian mixture over posterior means, the aggregate-posterior sampler (ex-post density estimation, Ghosh et
al., 2020, "From variational to deterministic autoencoders").

A text VAE's prior N(0, I) covers regions of the latent space that the posteriors of real texts never visit, and
the decoder turns those latents into a few generic sentences. Fitting a density to the posterior means of the
training texts after training and sampling latents from it instead of the prior gives samples that look like the
training texts' latents. The density is a mixture of `num_components` Gaussians fitted by EM in torch:

- initialisation: k-means++ seeding (Arthur and Vassilvitskii, 2007) from a `torch.Generator` seeded with `seed`;
  each point starts in the component of its nearest seed;
- EM in float64 for at most `max_iterations` iterations, stopping earlier once the mean log-likelihood per point
  improves by less than `tolerance` nats;
- covariances `"diagonal"` (default) or `"full"`; each variance (the diagonal of a full covariance) gets
  `variance_floor` added, so that no component collapses onto one point; a component left with no point keeps
  its previous mean and covariance.

`GaussianMixture.fit(points)` fits one, `sample(n, generator)` draws from it, `log_prob(points)` scores points.
`save_mixture` / `load_mixture` write and read it as safetensors (no pickle): the tensors `log_weights` (K),
`means` (K, d) and `variances` (K, d) or `covariances` (K, d, d), and in the metadata the settings (JSON) and
the fingerprint of the model weights it was fitted to. Torch and safetensors only: this file travels to the Hub.
"""

from __future__ import annotations

import json
import math

import torch

AGGREGATE_POSTERIOR_FILE = "aggregate_posterior.safetensors"
COVARIANCES = ("diagonal", "full")
DEFAULT_SETTINGS = {
    "num_components": 16,
    "covariance": "diagonal",
    "seed": 0,
    "max_iterations": 200,
    "tolerance": 1e-4,
    "variance_floor": 1e-3,
}
FINGERPRINT_METADATA_KEY = "weights_sha256"
SETTINGS_METADATA_KEY = "settings"


class GaussianMixture:
    """A mixture of Gaussians: `weights` (K), `means` (K, d), and `variances` (K, d) or full `covariances`
    (K, d, d) (`settings["covariance"]` says which). Built by `fit` or `load_mixture`."""

    def __init__(self, log_weights: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, settings: dict):
        self.log_weights = log_weights.double()
        self.means = means.double()
        self.covariance = settings.get("covariance", "diagonal")
        if self.covariance not in COVARIANCES:
            raise ValueError(f"`covariance` must be one of {list(COVARIANCES)}, got {self.covariance!r}.")
        # diagonal: the variances (K, d); full: the covariances (K, d, d)
        self.scales = scales.double()
        self.settings = dict(settings)
        expected = means.shape if self.covariance == "diagonal" else (*means.shape, means.shape[-1])
        if log_weights.shape != means.shape[:1] or tuple(scales.shape) != tuple(expected):
            raise ValueError(
                f"A {self.covariance} Gaussian mixture needs log_weights (K,), means (K, d) and "
                f"{'variances (K, d)' if self.covariance == 'diagonal' else 'covariances (K, d, d)'}, got "
                f"{tuple(log_weights.shape)}, {tuple(means.shape)} and {tuple(scales.shape)}."
            )
        self._cholesky = torch.linalg.cholesky(self.scales) if self.covariance == "full" else None

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> torch.Tensor:
        return self.log_weights.exp()

    def __repr__(self) -> str:
        return f"GaussianMixture(num_components={self.num_components}, dim={self.dim}, covariance={self.covariance!r})"

    @classmethod
    def fit(
        cls,
        points: torch.Tensor,
        num_components: int = DEFAULT_SETTINGS["num_components"],
        covariance: str = DEFAULT_SETTINGS["covariance"],
        seed: int = DEFAULT_SETTINGS["seed"],
        max_iterations: int = DEFAULT_SETTINGS["max_iterations"],
        tolerance: float = DEFAULT_SETTINGS["tolerance"],
        variance_floor: float = DEFAULT_SETTINGS["variance_floor"],
    ) -> GaussianMixture:
        """EM on `points` (N, d) from a k-means++ start seeded with `seed` (see the module's docstring)."""
        check_fit_settings(points, num_components, covariance, max_iterations, tolerance, variance_floor)
        x = points.detach().to(device="cpu", dtype=torch.float64)
        n, d = x.shape
        generator = torch.Generator().manual_seed(int(seed))
        centres = kmeans_plus_plus(x, num_components, generator)
        nearest = torch.cdist(x, centres).argmin(dim=1)
        responsibilities = torch.nn.functional.one_hot(nearest, num_components).double()
        log_weights, means, scales = _m_step(x, responsibilities, covariance, variance_floor, None)
        previous = -math.inf
        converged, iterations, mean_log_likelihood = False, 0, -math.inf
        while iterations < max_iterations:
            iterations += 1
            joint = _component_log_probs(x, log_weights, means, scales, covariance) + log_weights
            point_log_likelihood = torch.logsumexp(joint, dim=1)
            mean_log_likelihood = float(point_log_likelihood.mean())
            responsibilities = (joint - point_log_likelihood[:, None]).exp()
            log_weights, means, scales = _m_step(x, responsibilities, covariance, variance_floor, (means, scales))
            if mean_log_likelihood - previous < tolerance:
                converged = True
                break
            previous = mean_log_likelihood
        settings = {
            "num_components": num_components,
            "covariance": covariance,
            "init": "k-means++",
            "seed": int(seed),
            "max_iterations": max_iterations,
            "tolerance": tolerance,
            "variance_floor": variance_floor,
            "num_points": n,
            "iterations": iterations,
            "converged": converged,
            "mean_log_likelihood": round(mean_log_likelihood, 6),
        }
        return cls(log_weights, means, scales, settings)

    def log_prob(self, points: torch.Tensor) -> torch.Tensor:
        """log p(x) of each row of `points` (N, d), in `points`' dtype."""
        if points.dim() != 2 or points.shape[1] != self.dim:
            raise ValueError(f"`points` must have shape (N, {self.dim}), got {tuple(points.shape)}.")
        x = points.detach().to(device="cpu", dtype=torch.float64)
        joint = _component_log_probs(x, self.log_weights, self.means, self.scales, self.covariance)
        result = torch.logsumexp(joint + self.log_weights, dim=1)
        return result.to(device=points.device, dtype=points.dtype if points.is_floating_point() else torch.float64)

    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """(num_samples, d) float32 draws: a component by its weight, then its Gaussian, whose standard deviation
        `temperature` scales (0 gives the components' means). On `generator`'s device (the CPU without one)."""
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}.")
        if not temperature >= 0:
            raise ValueError(f"`temperature` must be >= 0, got {temperature}.")
        device = generator.device if generator is not None else torch.device("cpu")
        weights = self.weights.to(device)
        components = torch.multinomial(weights, num_samples, replacement=True, generator=generator)
        noise = torch.randn((num_samples, self.dim), generator=generator, device=device, dtype=torch.float64)
        means = self.means.to(device)[components]
        if self.covariance == "diagonal":
            offsets = noise * self.scales.to(device)[components].sqrt()
        else:
            offsets = torch.einsum("nij,nj->ni", self._cholesky.to(device)[components], noise)
        return (means + temperature * offsets).float()

    def tensors(self) -> dict[str, torch.Tensor]:
        """What the safetensors file holds."""
        scales = "variances" if self.covariance == "diagonal" else "covariances"
        return {"log_weights": self.log_weights, "means": self.means, scales: self.scales}


def check_fit_settings(points, num_components, covariance, max_iterations, tolerance, variance_floor) -> None:
    if not isinstance(points, torch.Tensor) or points.dim() != 2 or not points.is_floating_point():
        raise ValueError("`points` must be a 2-D floating-point tensor (N, d).")
    if not torch.isfinite(points).all():
        raise ValueError("`points` holds NaN or infinite values: a mixture cannot be fitted to them.")
    if isinstance(num_components, bool) or not isinstance(num_components, int) or num_components < 1:
        raise ValueError(f"`num_components` must be a positive integer, got {num_components!r}.")
    if points.shape[0] < num_components:
        raise ValueError(
            f"{points.shape[0]} points cannot fit {num_components} components: give at least as many texts as "
            "components, or ask for fewer components."
        )
    if covariance not in COVARIANCES:
        raise ValueError(f"`covariance` must be one of {list(COVARIANCES)}, got {covariance!r}.")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"`max_iterations` must be a positive integer, got {max_iterations!r}.")
    if not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0, got {tolerance!r}.")
    if not variance_floor > 0:
        raise ValueError(f"`variance_floor` must be > 0 (it keeps components from collapsing), got {variance_floor!r}.")


def kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k seeds from the rows of `x`: the first uniformly, each next one with probability proportional to its
    squared distance from the nearest seed so far."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [x[first]]
    distances = ((x - x[first]) ** 2).sum(dim=1)
    for _ in range(1, k):
        total = distances.sum()
        if total <= 0:  # every point sits on a seed already: any point will do
            index = int(torch.randint(n, (1,), generator=generator))
        else:
            index = int(torch.multinomial(distances / total, 1, generator=generator))
        centres.append(x[index])
        distances = torch.minimum(distances, ((x - x[index]) ** 2).sum(dim=1))
    return torch.stack(centres)


def _m_step(x, responsibilities, covariance, variance_floor, previous):
    n, d = x.shape
    counts = responsibilities.sum(dim=0)  # (K,)
    empty = counts < 1e-8
    safe = counts.clamp_min(1e-12)
    means = responsibilities.T @ x / safe[:, None]
    if covariance == "diagonal":
        second = responsibilities.T @ (x * x) / safe[:, None]
        scales = (second - means**2).clamp_min(0.0) + variance_floor
    else:
        centred = x[None, :, :] - means[:, None, :]  # (K, N, d)
        scales = torch.einsum("nk,kni,knj->kij", responsibilities, centred, centred) / safe[:, None, None]
        scales = 0.5 * (scales + scales.transpose(1, 2)) + variance_floor * torch.eye(d, dtype=x.dtype)
    if previous is not None and empty.any():
        means[empty], scales[empty] = previous[0][empty], previous[1][empty]
    log_weights = torch.log(counts.clamp_min(1e-12) / n)
    log_weights = log_weights - torch.logsumexp(log_weights, dim=0)
    return log_weights, means, scales


def _component_log_probs(x, log_weights, means, scales, covariance) -> torch.Tensor:
    """(N, K) log N(x_n; mu_k, Sigma_k)."""
    d = x.shape[1]
    if covariance == "diagonal":
        # sum_j (x_j - mu_j)^2 / var_j as matrix products, without an (N, K, d) tensor
        precision = 1.0 / scales  # (K, d)
        squared = (x * x) @ precision.T - 2.0 * x @ (means * precision).T + (means * means * precision).sum(dim=1)
        return -0.5 * (squared.clamp_min(0.0) + scales.log().sum(dim=1)[None] + d * math.log(2 * math.pi))
    cholesky = torch.linalg.cholesky(scales)  # (K, d, d)
    centred = (x[None, :, :] - means[:, None, :]).transpose(1, 2)  # (K, d, N)
    solved = torch.linalg.solve_triangular(cholesky, centred, upper=False)  # (K, d, N)
    squared = (solved**2).sum(dim=1).T  # (N, K)
    log_det = 2 * torch.log(torch.diagonal(cholesky, dim1=1, dim2=2)).sum(dim=1)
    return -0.5 * (squared + log_det[None] + d * math.log(2 * math.pi))


def save_mixture(mixture: GaussianMixture, path, weights_sha256: str | None) -> None:
    """Write `mixture` as safetensors at `path`, with its settings and the fingerprint of the weights it belongs to
    (`file_utils.weights_fingerprint` of the folder's model weights) in the metadata."""
    from safetensors.torch import save_file

    metadata = {"format": "pt", SETTINGS_METADATA_KEY: json.dumps(mixture.settings, sort_keys=True)}
    if weights_sha256 is not None:
        metadata[FINGERPRINT_METADATA_KEY] = weights_sha256
    save_file({name: tensor.contiguous() for name, tensor in mixture.tensors().items()}, str(path), metadata=metadata)


def load_mixture(path) -> tuple[GaussianMixture, str | None]:
    """The mixture of a file that `save_mixture` wrote, and the weights fingerprint recorded in it."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (a safe_open)
    try:
        settings = json.loads(metadata.get(SETTINGS_METADATA_KEY, "{}"))
        scales = tensors["variances"] if "variances" in tensors else tensors["covariances"]
        settings.setdefault("covariance", "diagonal" if "variances" in tensors else "full")
        mixture = GaussianMixture(tensors["log_weights"], tensors["means"], scales, settings)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{path} is not a Gaussian mixture written by `save_pretrained` ({error}); delete it, or fit a new one "
            "with `model.fit_aggregate_posterior(texts, tokenizer)` and save the model again."
        ) from error
    return mixture, metadata.get(FINGERPRINT_METADATA_KEY)


def parameters_digest(model) -> str:
    """SHA-256 over the names and bytes of `model`'s state dict in memory: whether the weights changed since the
    mixture was fitted (a mixture fitted before more training would no longer describe the posteriors)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + b"\0" + str(tensor.dtype).encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


__all__ = [
    "AGGREGATE_POSTERIOR_FILE",
    "DEFAULT_SETTINGS",
    "GaussianMixture",
    "kmeans_plus_plus",
    "load_mixture",
    "parameters_digest",
    "save_mixture",
]
