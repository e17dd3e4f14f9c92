"""The results variables' names, descriptions, units and conventions (docs/results.md), and the
stage transfers they count."""
from __future__ import annotations


import xarray as xr

from ..codes import STAGES


CENTS = 100
# Moves between impairment stages in a month, (from, to) stage codes, counted by the kernel where a
# change of state changes the stage (under the 30+ / 90+ rule a roll from M1 or M3, a cure from
# M2 .. M6; no other move occurs under it).
TRANSFER_STAGES = ((0, 1), (1, 2), (1, 0), (2, 0), (2, 1))
TRANSFERS = tuple(f"{STAGES[a]}_to_{b + 1}" for a, b in TRANSFER_STAGES)
DESCRIPTIONS = {
    "accounts": "open accounts by state at the end of the month",
    "balance": "principal receivable by state at the end of the month (lines: spend not yet billed, billed "
               "and not yet due, unpaid statements, bill-instalment plans)",
    "originated": "principal lent to new accounts",
    "drawn": "new revolving spend (principal)",
    "repaid": "scheduled and arrears principal repaid",
    "prepaid": "principal repaid early in full",
    "charged_off": "principal written off (from M6, 180+ days past due)",
    "recovered": "recoveries on charged-off principal, net of collection cost",
    "written_off": "interest, fees and penalty owed and never paid, written off at charge-off (never income)",
    "fraud_charged_off": "principal of first-party fraudsters' accounts charged off (part of charged_off)",
    "merchant_discount": "merchant discount on instalment purchases, at origination",
    "merchant_fee_income": "merchant service fee on purchases on revolving lines, in the month of the purchase",
    "borrowers": "borrowers with an open account, by the worst state of their open accounts",
    "interest_income": "contract and revolving interest received (in cash: when paid)",
    "interest_accrual": "effective-interest income recognised in the month less the cash interest and integral fees "
                        "received (signed; 0 with run.income_basis = cash): revenue's interest is interest_income + "
                        "the integral fees + interest_accrual",
    "accrued_written_off": "accrued interest receivable written off at charge-off (effective interest): in the "
                           "credit-loss expense, not in the net charge-offs (principal)",
    "fee_income": "fees received (instalment fees, bill-instalment fees, fixed late fees)",
    "penalty_income": "penalty interest and per-day late fees received on overdue amounts",
    "funding_cost": "cost of funds on the principal outstanding at the start of the month",
    "net_revenue": "interest + interest accrual + fees + penalty + merchant discount - funding cost - charged off + "
                   "recovered - accrued interest written off (before provisions and operating costs)",
    "acquisition_cost": "operating cost: costs.acquisition per account booked",
    "servicing_cost": "operating cost: costs.servicing per account open at the end of the month",
    "collection_cost": "operating cost: costs.collection per account delinquent (M1 .. M6) at the end of the month",
    "allowance_originated": "ECL allowance of the accounts originated in the month, at its end",
    "allowance_remeasured": "change in the ECL allowance of accounts open at both month ends (stage transfers, "
                            "amortisation, factor)",
    "allowance_released": "ECL allowance at the previous month end of accounts closed in the month (repaid, matured, "
                          "line closed): released",
    "allowance_used": "ECL allowance at the previous month end of accounts charged off in the month: used against the "
                      "write-off",
    "credit_loss_expense": "allowance at the month end - at the previous one + charged off - recovered + accrued "
                           "interest written off (= originated + remeasured - released - used + the write-offs)",
    "operating_costs": "acquisition + servicing + collection costs",
    "pretax_income": "interest + interest accrual + fees + penalty + merchant discount - funding cost - credit-loss "
                     "expense - operating costs",
    "stage_accounts": "open accounts by impairment stage at the end of the month (provisions.next_stage: stage 3 at "
                      "90+ and in its cure months, stage 2 at 30+, on a significant increase in credit risk and in "
                      "its probation, else stage 1)",
    "stage_balance": "principal receivable by impairment stage at the end of the month",
    "accrued_interest": "accrued interest receivable by impairment stage at the end of the month (effective interest: "
                        "income recognised and not yet received; the gross carrying amount is stage_balance + it; 0 "
                        "with run.income_basis = cash)",
    "opening_accrued_interest": "accrued interest receivable of the existing book at the start of month 1 (0: the "
                                "book enters with none accrued)",
    "allowance": "expected-credit-loss allowance by impairment stage at the end of the month: 12-month ECL in stage "
                 "1, lifetime ECL in stages 2 and 3, under the lender's weighted forecast (provisions.basis, "
                 "provisions.scenarios; a line's exposure is its balance as its payer type pays it down and draws "
                 "on its limit)",
    "opening_allowance": "ECL allowance of the existing book at the start of month 1, per path (with month 1's factor)",
    "allowance_overlay": "the management overlay in the allowance by impairment stage at the end of the month: "
                         "provisions.overlay of each account's modelled ECL, rounded to a cent (allowance includes "
                         "it, and so do its movements and the credit-loss expense; 0 with no overlay)",
    "allowance_by_scenario": "the allowance under each of the lender's forecasts (provisions.scenarios), each at "
                             "100% (the IFRS 7 sensitivity), and under their weighted sum (forecast 'weighted': "
                             "the allowance before each account is rounded to a cent); through the cycle every "
                             "forecast's is the one allowance",
    "stage_transfers": "accounts whose impairment stage at the month end differs from the last month end's, by "
                       "move (provisions.next_stage): into stage 2 on 30+ or a significant increase in credit risk, "
                       "into stage 3 at 90+, out of stage 3 after provisions.cure_months current, out of stage 2 "
                       "after provisions.probation_months current; accounts that close or charge off in the month "
                       "leave from their last stage, new ones enter in stage 1",
    "vintage_costs": "operating costs of the vintage in the month on book",
    "vintage_allowance": "ECL allowance of the vintage's open accounts at the end of the month on book",
    "path_month_allowance": "ECL allowance at the end of the month, per path",
    "originated_accounts": "accounts originated",
    "prepaid_accounts": "accounts repaid early in full",
    "matured_accounts": "accounts closed by their last scheduled payment",
    "closed_accounts": "revolving lines closed: stopped spending (attrition) and nothing owed",
    "charged_off_accounts": "accounts charged off",
    "rolls": "accounts that missed a payment due, by the state they were in",
    "cures": "accounts that paid all arrears and returned to current, by the state they were in",
    "applicants": "applicants (people)",
    "applications": "applications for the product (an applicant may ask for several products)",
    "approvals": "applications approved (an applicant approved for several products counts once for each)",
    "approved_applicants": "applicants approved for at least one product (people)",
    "takeups": "approved applicants who took the offer (accounts originated)",
    "opening_accounts": "accounts of the existing book at the start of month 1",
    "opening_balance": "principal of the existing book at the start of month 1",
    "mean_apr": "mean all-in APR (IRR method, fees included) of the accounts taken",
    "cap_applications": "applications priced: the product was asked for and the applicant passed the rules",
    "cap_bound": "applications priced whose risk price (all-in APR before the cap) was above policy.apr_cap",
    "priced_at_cap": "applications above the cap that were approved at the cap (on_cap = cap)",
    "rejected_at_cap": "applications above the cap that were rejected for it (on_cap = reject)",
    "apr_before_cap": "mean risk price (all-in APR before the cap) of the applications priced",
    "apr_after_cap": "mean all-in APR offered to the applications approved, after the cap",
    "approvals_without_cap": "applications that would have been approved with the cap lifted: the same applicants "
                             "decided again at their risk prices with the same draws (common random numbers), as a "
                             "run without a binding cap approves them",
    "takeups_without_cap": "offers that would have been taken with the cap lifted (the same second decision pass and "
                           "take-up draws as approvals_without_cap)",
    "revenue_given_up": "what the accounts taken at the cap would have paid at their risk price and do not, before "
                        "default and prepayment: a cash loan's contract interest and a purchase's fees on schedule, "
                        "a line's revolving interest on the balance it is expected to revolve over "
                        "provisions.line_life_months (bill instalments and limit raises left out)",
    "accounts_seasoned_12m": "accounts originated with 12 months on book inside the horizon",
    "bads_12m": "of accounts_seasoned_12m, those that reached 90+ within 12 months on book",
    "pd_12m": "exposure-weighted PD of the pool's accounts at origination, first-party fraud at PD 1",
    "irb_pd": "the IRB pool PD: the one-year PD through the cycle of the pool's performing book at the end of the "
              "capital month, each state's (current: the pool's pd_12m of accounts that are not fraud; M1 .. M3: "
              "the Markov chain from the state) weighted by its balance, mean over paths",
    "pd_12m_seasoned": "mean PD by account (first-party fraud at 1) of the accounts originated with 12 months on "
                       "book inside the horizon: what bads_12m / accounts_seasoned_12m estimates",
    "fraud_seasoned": "share of the accounts originated with 12 months on book inside the horizon that are "
                      "first-party fraud",
    "irb_capital": "Basel IRB capital of the pool: K(PD, LGD, R) x irb_exposure, on the capital month",
    "irb_exposure": "the pool's exposure at the end of the capital month, mean over paths: its performing balance "
                    "(current .. M3; 90+ is in default) and, for lines, their loan_equivalent_factor x their undrawn limit",
    "line_limit": "limits of open lines current .. M3 at the end of the month",
    "capital_loss": "net charge-offs (charged off - recovered) in the capital year of the book as it stands at the "
                    "end of the capital month (accounts originated later left out), per path",
    "capital_profit": "pre-tax income in the capital year of the same book, per path (its credit-loss expense: its "
                      "allowance at the window's end - at the capital month + its net charge-offs)",
    "platform_capital_loss": "the platform's share of capital_loss: platform_loss_share x capital_loss, per path",
    "platform_capital_profit": "the platform's pre-tax income in the capital year of the same book, per path "
                               "(its view of the book's flows: docs/results.md, the two views)",
    "platform_share": "funding.platform_share: the share of each account's principal the platform funds itself",
    "platform_loss_share": "the share of the credit losses the platform carries: platform_share, or 1 under "
                           "funding.guarantee",
    "service_fee_share": "funding.service_fee_share: the share of the partner banks' interest and fee income they "
                         "pay the platform as its technology service fee",
    "path_month_loss": "net charge-offs (charged off - recovered) in the month, per path",
    "path_month_revenue": "interest (with its accrual), fees, penalty, merchant discount and merchant fee in the "
                          "month, per path",
    "path_month_profit": "pre-tax income in the month, per path",
    "path_month_balance": "principal receivable at the end of the month, per path",
    "path_month_dpd30_balance": "principal 30+ days past due (M2 and worse) at the end of the month, per path",
    "path_month_dpd90_balance": "principal 90+ days past due (M4 and worse) at the end of the month, per path",
    "path_revenue": "interest (with its accrual), fees, penalty, merchant discount and merchant fee over the horizon, "
                    "per path",
    "path_loss": "net charge-offs (charged off - recovered) over the horizon, per path",
    "path_profit": "pre-tax income over the horizon, per path",
    "path_weight": "likelihood ratio of the path's factor draws under importance sampling (capital.importance_quantile;"
                   " 1 without): every statistic across paths weights the paths by it",
    "expected_loss": "mean over paths (weighted) of the portfolio's net charge-offs over the horizon",
    "expected_loss_se": "Monte Carlo standard error of expected_loss",
    "capital_expected_loss": "mean over paths (weighted) of capital_loss, the capital year's loss",
    "capital_expected_loss_se": "Monte Carlo standard error of capital_expected_loss",
    "value_at_risk": "quantile across paths of capital_loss, the capital year's loss: the first sorted path loss "
                     "whose losses above carry an estimated probability of at most 1 - q (with equal weights the "
                     "ceil(n q)-th smallest)",
    "value_at_risk_se": "Monte Carlo standard error of value_at_risk (bootstrap over paths, with their weights)",
    "expected_shortfall": "mean loss (weighted) of the paths at or beyond value_at_risk",
    "expected_shortfall_se": "Monte Carlo standard error of expected_shortfall (bootstrap over paths)",
    "tail_paths": "paths at or beyond value_at_risk: with fewer than 10 the figures are a lower bound (VaR) or "
                  "no estimate (ES), and the headline says so",
    "economic_capital_tail_paths": "paths at or beyond the VaR of economic capital (RAROC is NaN below 10)",
    "unexpected_loss": "value_at_risk - capital_expected_loss",
    "economic_capital": "value at risk of the capital year's loss at capital.economic_capital_level - "
                        "capital_expected_loss",
    "economic_capital_se": "Monte Carlo standard error of economic_capital (the bootstrap of value_at_risk_se, of "
                           "the VaR less the mean in each resample)",
    "irb_capital_total": "Basel IRB capital of the whole book (sum of irb_capital)",
    "raroc": "risk-adjusted return on capital: the capital year's mean pre-tax income (capital_profit, a year) / "
             "economic capital (NaN when fewer than 10 paths lie at or beyond the economic-capital VaR)",
    "pnl": "P&L over the horizon, mean over paths, in yuan, of the whole book and of the platform (view)",
    "pnl_yield": "the P&L over the horizon, a year, as fractions of the whole book's average receivables, in each view",
    "vintage_balance": "outstanding principal of the vintage by state (M2 .. M6; current and M1 not kept: NaN), "
                       "at the end of each month on book",
    "vintage_original": "the vintage's original amount: principal of loans and purchases, opening limit of lines",
    "vintage_charged_off": "principal of the vintage charged off in the month on book",
    "vintage_recovered": "recoveries on the vintage's charge-offs in the month on book",
    "vintage_accrued_written_off": "accrued interest receivable of the vintage written off in the month on book "
                                   "(effective interest)",
    "vintage_earnings": "interest (with its accrual), fees, penalty, merchant discount and merchant fee less funding "
                        "cost of the vintage in the month on book",
    # Per path, what the headline's errors read besides the monthly series (assemble.path_series), and
    # each series of each population group of the applicants (docs/results.md, "Monte Carlo error").
    "path_flows": "the horizon's flows by product (series_flow: the P&L's flows, originated and fraud charged off), "
                  "per path",
    "path_stage_balance": "principal receivable by impairment stage at the end of the horizon, per path",
    "path_stage_allowance": "ECL allowance by impairment stage at the end of the horizon, per path",
    "group_funnel": "the funnel of each population group: applicants, applicants approved, applications, approvals, "
                    "take-ups, applications priced, cap bound and rejected at the cap (counts); the sums of the price "
                    "of the applications approved and of the risk price of those priced (fractions a year); revenue "
                    "given up to the cap (yuan)",
    "group_path_month_loss": "path_month_loss of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_revenue": "path_month_revenue of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_profit": "path_month_profit of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_allowance": "path_month_allowance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_balance": "path_month_balance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_dpd30_balance": "path_month_dpd30_balance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_month_dpd90_balance": "path_month_dpd90_balance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_flows": "path_flows of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_stage_balance": "path_stage_balance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_path_stage_allowance": "path_stage_allowance of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_capital_loss": "capital_loss of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_capital_profit": "capital_profit of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_platform_capital_loss": "platform_capital_loss of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
    "group_platform_capital_profit": "platform_capital_profit of each population group (the applicants by id modulo run.population_groups; the "
                 "last group, the existing book's)",
}
COUNT_UNITS = {"borrowers": "borrowers", "applicants": "applicants", "approved_applicants": "applicants",
               "applications": "applications", "cap_applications": "applications", "cap_bound": "applications",
               "priced_at_cap": "applications", "rejected_at_cap": "applications",
               "approvals_without_cap": "applications",
               "group_funnel": "applicants and applications (price sums: fractions a year; revenue given up: yuan)",
               "tail_paths": "paths", "economic_capital_tail_paths": "paths"}
FRACTIONS = {"pd_12m", "irb_pd", "pd_12m_seasoned", "fraud_seasoned", "path_weight", "platform_share", "platform_loss_share",
             "service_fee_share"}
ANNUAL_FRACTIONS = {"raroc", "mean_apr", "pnl_yield", "apr_before_cap", "apr_after_cap"}
COORDINATES = {  # name: (long_name, UDUNITS units)
    "path": ("Monte Carlo path", "1"),
    "month": ("month of the run, 1 .. H", "1"),
    "vintage": ("origination month of the vintage", "1"),
    "months_on_book": ("months since origination", "1"),
    "quantile": ("quantile level of the loss distribution", "1"),
    "population_group": ("population group: applicants by id modulo run.population_groups; the last, the book", "1"),
    "sensitivity_month": ("month end of the allowance under each forecast: provisions.sensitivity_months", "1"),
}
WEIGHTED = "weighted"     # the forecast coordinate's first value: the weighted sum of provisions.scenarios



def display_units(name: str, var: xr.DataArray) -> str:
    """A variable's units as a reader says them: yuan, a count (accounts, borrowers, ...), a fraction."""
    if name in FRACTIONS:
        return "fraction"
    if name in ANNUAL_FRACTIONS:
        return "fraction a year"
    return "yuan" if var.dtype.kind == "f" else COUNT_UNITS.get(name, "accounts")


def cf_units(display: str) -> dict[str, str]:
    """CF attributes for units said as `display`: UDUNITS `units` ("1" for counts and fractions,
    "year-1" a year), the currency of money, what a count counts, and `display_units`."""
    attrs = {"display_units": display}
    if display == "yuan":
        return attrs | {"units": "1", "currency": "CNY"}
    if display == "fraction":
        return attrs | {"units": "1"}
    if display == "fraction a year":
        return attrs | {"units": "year-1"}
    return attrs | {"units": "1", "count_of": display}
CONVENTIONS = {
    "money": "yuan (CNY); amounts are sums of integer cents; repaid and prepaid are principal only",
    "month": "month t = 1 .. H of the run; balances and accounts at the end of the month",
    "states": "current = M0; Mk = k consecutive missed payments (M1 1-30 days past due ... M6 151-180); "
              "30+ = M2 and worse, 90+ = M4 and worse; a miss in M6 is charged off",
    "correlation": "asset correlation R in the Basel sense: h(z) = Phi((Phi^-1(h) - sqrt(R) z) / sqrt(1 - R))",
    "score_scaling": "factor = pdo / ln 2; offset = base_score - factor ln(base_odds); "
                     "score = offset + factor ln((1 - pd) / pd), odds good:bad",
    "day_count": "APR = daily rate x days_per_year (cash loan, revolving line); monthly rate = APR / 12; "
                 "penalty a month = daily penalty rate x days_per_year / 12, on overdue principal only",
    "income": "interest_income, fee_income and penalty_income are cash received; on the effective-interest basis "
              "(attribute income_basis) interest_accrual turns the interest and integral fees into income at the "
              "effective rate, and accrued_written_off writes the accrued receivable off at charge-off; what is "
              "owed and unpaid at charge-off is written_off; charged_off is principal only",
    "borrower_dependence": "a borrower's accounts share a monthly draw b: miss if u < Phi((Phi^-1(h) - sqrt(R) z "
                           "- sqrt(R_b) b) / sqrt(1 - R - R_b)), R_b = factor.borrower_correlation",
    "principal_identity": "sum(balance)_t = sum(balance)_(t-1) + originated + drawn - repaid - prepaid - charged_off",
}

