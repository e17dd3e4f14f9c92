"""The model: random numbers, products, risk, provisions, applicants, scoring, policy, the kernel's
inputs and the kernel. (docs/architecture.md section 2)"""
