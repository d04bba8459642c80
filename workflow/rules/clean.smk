# Disk: list or remove cached artifacts of parameter sets the config no longer produces.
# The current keys come from the plan of this very config (mer.plan.runs: experiments and
# sweeps), so they match the paths the rules would build.


rule clean_cache:
    """Named target: list the stale artifact folders and their sizes (removes nothing)."""
    params:
        data_dir=DATA_DIR,
        current=current_keys(),
    log:
        f"{LOGS}/clean_cache.log",
    conda:
        ENV
    shell:
        "mer clean-cache {params.data_dir:q} --current-json {params.current:q} 2>&1 | tee {log}"


rule clean_cache_delete:
    """Named target: remove the folders that clean_cache lists."""
    params:
        data_dir=DATA_DIR,
        current=current_keys(),
    log:
        f"{LOGS}/clean_cache.log",
    conda:
        ENV
    shell:
        "mer clean-cache {params.data_dir:q} --current-json {params.current:q} --delete"
        " 2>&1 | tee {log}"
