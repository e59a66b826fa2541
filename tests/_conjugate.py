"""A model with a closed-form evidence, for the tests of the evidence estimators."""

import numpy as np
from scipy.special import gammaln


def gamma_poisson():
    """``(model, exact log Z)``: a Gamma(2, 0.5) rate with Poisson counts; a positive parameter
    (log transform, Jacobian) whose evidence is a closed form."""
    import numpyro
    import numpyro.distributions as dist

    y = np.array([3, 5, 2, 4, 6, 1, 3])
    a, b = 2.0, 0.5

    def model():
        lam = numpyro.sample("lam", dist.Gamma(a, b))
        numpyro.sample("y", dist.Poisson(lam), obs=y)

    n, s = len(y), y.sum()
    exact = a * np.log(b) - gammaln(a) + gammaln(a + s) - (a + s) * np.log(b + n)
    return model, exact - gammaln(y + 1).sum()
