"""The experiment plan: every run a validated config asks for, by stage and parameter key
(mer.plan.runs); `mer plan` prints it without running Snakemake."""
