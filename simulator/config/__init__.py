"""The scenario: its schema, its loading, and the files a run reads and writes. (docs/architecture.md section 2)"""
