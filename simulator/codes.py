"""The vocabulary: products, repayment methods, account states, payer types and kernel outputs,
with their integer codes. Every other module takes its codes from here; no logic."""
from __future__ import annotations

import numpy as np

# Kinds of product: how an account runs. Below the policy, code branches on the kind, not the product.
KINDS = ("line", "loan", "plan")     # a revolving line, a cash loan, an instalment purchase plan
LINE, LOAN, PLAN = range(len(KINDS))

# Products (the `product` dimension, in this order) and the kind of each.
PRODUCTS = ("huabei", "jiebei", "yuefu")
HUABEI, JIEBEI, YUEFU = range(len(PRODUCTS))
KIND = (LINE, LOAN, PLAN)           # KIND[product code]: its kind
PRODUCT_KIND = np.array(KIND, dtype=np.int8)   # KIND as an array: PRODUCT_KIND[product codes] is their kinds
PRODUCT_KIND.flags.writeable = False

# Repayment methods of the cash loan (instalment plans repay principal in equal parts: EQUAL_PRINCIPAL).
METHODS = ("equal_installment", "equal_principal", "interest_first")
EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_FIRST = range(len(METHODS))
METHOD_CODES = {name: code for code, name in enumerate(METHODS)}

# States of an open account at a month end (the `state` dimension): current = M0, Mk = k missed
# payments in a row. Charged-off and closed accounts leave the dimension (they are not open).
STATES = ("current", "M1", "M2", "M3", "M4", "M5", "M6")
N_STATES = len(STATES)
DPD30 = STATES.index("M2")    # 30+ days past due: M2 and worse
DPD90 = STATES.index("M4")    # 90+ days past due: M4 and worse (also "in default" for capital)
VINTAGE_STATES = DPD30        # balances by vintage are kept for M2 and worse only
PD_MONTHS = 12                # pd_12m: reaching 90+ within this many months on book

# How a revolving line's holder pays a statement.
PAYER_TYPES = ("transactor", "revolver", "minimum_payer")
TRANSACTOR, REVOLVER, MINIMUM_PAYER = range(len(PAYER_TYPES))

# Flows the kernel adds up per (path, month, product, band): amounts in cents, then account counts.
# interest_accrual: the effective-interest income recognised less the cash interest and integral fees
# received (signed; 0 on the cash basis); accrued_written_off: the accrued interest receivable written
# off at a charge-off (docs/model.md section 6).
FLOWS = (
    "originated", "drawn", "repaid", "prepaid", "charged_off", "recovered", "written_off", "fraud_charged_off",
    "interest_income", "fee_income", "penalty_income", "merchant_discount", "merchant_fee_income", "funding_cost",
    "interest_accrual", "accrued_written_off",
    "originated_accounts", "prepaid_accounts", "matured_accounts", "closed_accounts", "charged_off_accounts",
)
(ORIGINATED, DRAWN, REPAID, PREPAID, CHARGED_OFF_AMT, RECOVERED, WRITTEN_OFF, FRAUD_CHARGED_OFF,
 INTEREST, FEES, PENALTY, DISCOUNT, MERCHANT_FEE, FUNDING, ACCRUAL, ACCRUED_WRITTEN_OFF,
 N_ORIGINATED, N_PREPAID, N_MATURED, N_CLOSED, N_CHARGED_OFF) = range(len(FLOWS))
MONEY_FLOWS = FLOWS[:N_ORIGINATED]

# Flows kept by vintage and months on book (original: principal of loans, opening limit of lines;
# credit income: interest + fees + penalty + interest accrual; merchant income: merchant discount + merchant fee;
# funding: funding cost; costs: operating costs; allowance: the ECL allowance of the vintage's open
# accounts at the end of the month on book, a stock; accrued written off: as the flow).
VINTAGE_FLOWS = ("original", "charged_off", "recovered", "credit_income", "merchant_income", "funding", "costs",
                 "allowance", "accrued_written_off")
(V_ORIGINAL, V_CHARGED_OFF, V_RECOVERED, V_CREDIT_INCOME, V_MERCHANT_INCOME, V_FUNDING, V_COSTS,
 V_ALLOWANCE, V_ACCRUED_WRITTEN_OFF) = range(len(VINTAGE_FLOWS))

# Impairment stages (IFRS 9) of an open account, from its state: stage 1 current and M1 (12-month
# expected credit loss), stage 2 M2 and M3 (30+ days past due: a significant increase in credit risk;
# lifetime ECL), stage 3 M4 .. M6 (90+, credit-impaired; lifetime ECL).
BOOK_ID_OFFSET = 1 << 40          # borrower and account ids of an existing book, apart from applicants'

STAGES = ("stage_1", "stage_2", "stage_3")   # the rule: provisions.stage_of
STAGE_1, STAGE_2, STAGE_3 = range(len(STAGES))

# Money flows of the accounting P&L the kernel adds up per (path, month, product, band), in cents:
# operating costs, and the movements of the ECL allowance (closing = opening + originated + remeasured
# - released - used; released: allowance of accounts closed by repayment, used: of accounts charged off).
ACCOUNTING = ("acquisition_cost", "servicing_cost", "collection_cost",
              "allowance_originated", "allowance_remeasured", "allowance_released", "allowance_used")
(ACQUISITION, SERVICING, COLLECTION,
 A_ORIGINATED, A_REMEASURED, A_RELEASED, A_USED) = range(len(ACCOUNTING))
COSTS = ACCOUNTING[:A_ORIGINATED]

# The last axis of the stock outputs (stocks, vintage_stocks, the opening book): accounts and
# balance in cents; of the 12-month counts (seasoned): accounts and those that reached 90+ (bads).
ACCOUNTS, BALANCE = 0, 1
BADS = 1
ALLOWANCE = 2                     # the stage output's third entry: the ECL allowance in cents
ACCRUED = 3                       # its fourth: the accrued interest receivable in cents (effective interest)
OVERLAY = 4                       # its fifth: the management overlay in the allowance, in cents (provisions.overlay)
STAGE_STOCK = 5                   # entries of the stage output's last axis
# The allowance under each of the lender's forecasts (the forecast_allowance output, provisions.EclTable's
# columns: the weighted one first, then each scenario alone) is kept unrounded, in millionths of a cent,
# so that the weighted one is the weighted sum of the others to 1e-9 of it.
FORECAST_UNIT = 1e6

# The loan tape (`simulator.tape`): per account and month of path 0, the status (a state, or the month
# the account is charged off, closed or prepaid in full: recoveries follow as charged_off rows; -1: no
# row) and amounts
# in cents: the balance at the month end, what fell due and what was paid in the month, the principal
# charged off and the recoveries.
TAPE_STATUS = STATES + ("charged_off", "closed", "prepaid")
CHARGED_OFF_STATUS, CLOSED_STATUS, PREPAID_STATUS = N_STATES, N_STATES + 1, N_STATES + 2
TAPE = ("status", "balance", "amount_due", "amount_paid", "charged_off", "recovered")
T_STATUS, T_BALANCE, T_DUE, T_PAID, T_CHARGED_OFF, T_RECOVERED = range(len(TAPE))

# The applicant funnel, by month, product and band.
FUNNEL = ("applications", "approvals", "takeups")
APPLICATIONS, APPROVALS, TAKEUPS = range(len(FUNNEL))
# The funnel of each population group (origination.group_funnel, cap_effect): counts, the sums of the
# prices (all-in APR) of the applications approved and of the risk prices of those priced, and the
# revenue given up to the cap (yuan).
GROUP_PRICES = ("apr_approved_sum", "apr_priced_sum", "revenue_given_up")      # its floating-point sums, last
GROUP_FUNNEL = ("applicants", "approved_applicants") + FUNNEL + ("cap_applications", "cap_bound",
                                                                 "rejected_at_cap") + GROUP_PRICES

# Revenue lines (money flows): net revenue = revenue - funding cost - charged off + recovered - accrued
# interest written off. interest_accrual turns the cash interest and integral fees into effective-interest
# income (0 on the cash basis).
REVENUE = ("interest_income", "interest_accrual", "fee_income", "penalty_income", "merchant_discount",
           "merchant_fee_income")

# How interest and integral fees are income (`run.income_basis`).
INCOME_BASES = ("effective_interest", "cash")
