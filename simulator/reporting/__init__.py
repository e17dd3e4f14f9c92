"""Reading results back: the measures, the headline table, the report's figures and pages. (docs/architecture.md section 2)"""
