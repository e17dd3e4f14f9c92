"""Joint lending: the platform's own view of a book whose principal it shares with partner banks.

The platform funds `funding.platform_share` of each account's principal and the partners the rest;
the partners pay it a technology service fee, `funding.service_fee_share` of their interest and fee
income (with the interest accrual of effective interest). The platform view of a mapping of P&L flows
(names of codes.FLOWS and codes.ACCOUNTING, product last) keeps the platform's share of the interest
(with its accrual), fees, penalties and funding cost, the share of the credit losses (the accrued
interest written off included) it carries (its funding share, or all of them under
`funding.guarantee`), and the merchant income and operating costs in full (the platform deals with the
merchants and runs the accounts); the book view is the whole book as one lender, with no service fee."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codes import PRODUCTS
from ..config.schema import Funding

VIEWS = ("book", "platform")
CREDIT_INCOME = ("interest_income", "interest_accrual", "fee_income", "penalty_income")   # shared with the partners
FUNDED = CREDIT_INCOME + ("funding_cost",)
CREDIT_LOSSES = ("charged_off", "accrued_written_off", "recovered", "allowance_originated", "allowance_remeasured",
                 "allowance_released", "allowance_used", "allowance")
SERVICE_FEE = "service_fee_income"


@dataclass(frozen=True)
class Shares:
    """Per product (codes.PRODUCTS order, arrays; or DataArrays with a product dimension): the
    platform's share of the principal (`funded`), of the credit losses (`losses`) and of the
    partners' interest and fee income paid as its service fee."""
    funded: Any
    losses: Any
    service_fee: Any


def shares(funding: Funding) -> Shares:
    """The funding section's shares as arrays by product."""
    funded = np.array([getattr(funding.platform_share, p) for p in PRODUCTS])
    fee = np.array([getattr(funding.service_fee_share, p) for p in PRODUCTS])
    return Shares(funded, np.ones_like(funded) if funding.guarantee else funded, fee)


def book(x: dict) -> dict:
    """The whole book's flows as one lender's: `x` with a service fee of 0."""
    return {**x, SERVICE_FEE: 0.0 * x["interest_income"]}


def platform(x: dict, shares: Shares) -> dict:
    """The platform's flows of the book's flows `x` (a mapping with the product axis or dimension
    last), given its `shares`."""
    out = dict(x)
    for name in FUNDED:
        out[name] = x[name] * shares.funded
    for name in CREDIT_LOSSES:
        if name in x:
            out[name] = x[name] * shares.losses
    partners = sum(x[name] for name in CREDIT_INCOME) * (1 - shares.funded)
    out[SERVICE_FEE] = shares.service_fee * partners
    return out


def view(x: dict, name: str, shares: Shares) -> dict:
    """The flows `x` in the view `name` (VIEWS)."""
    return book(x) if name == "book" else platform(x, shares)
