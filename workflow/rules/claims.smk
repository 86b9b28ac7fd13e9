# The claims table (the report's front page): for each claim of the two studies, what this run
# shows, the numbers behind it and a verdict (reproduced, not reproduced, not testable at this
# budget), computed from the other stages' results and never written by hand.

CLAIMS = config["claims"]
CLAIMS_DIR = f"{OUT}/claims"


# Seconds of work: on a cluster it runs where Snakemake runs, not through the queue.
localrules:
    claims_table,


# The claims table alone: `snakemake --profile profiles/local claims` (it needs every stage).
rule claims:
    input:
        claims_targets(),


rule claims_table:
    input:
        correlation=f"{ENERGY}/correlation.json",
        importance=f"{ENERGY}/element_importance.csv",
        table1=f"{EVAL_DIR}/table1.csv",
        gradients=expand(f"{TRAIN_DIR}/{{method}}/gradients.csv", method=METHODS),
        ablation=f"{OUT}/gradient_ablation/ablation.json",
        density_summary=f"{DENSITY_DIR}/density_summary.csv",
        density_all=f"{DENSITY_DIR}/density_all.csv",
        scaling_fits=f"{SCALING_DIR}/scaling_fits.json",
        scaling_results=f"{SCALING_DIR}/scaling_results.csv",
        efficiency=f"{EL_RESULTS}/data_efficiency.csv",
        temperature=f"{EL_RESULTS}/temperature.csv",
        stability=f"{EL_RESULTS}/stability_structure.json",
        provenance=f"{DATA}/provenance.json",
        elements_provenance=f"{EL_DATA}/Ge/provenance.json",
    output:
        csv=f"{CLAIMS_DIR}/claims.csv",
        json=f"{CLAIMS_DIR}/claims.json",
        markdown=f"{CLAIMS_DIR}/claims.md",
        html=report(
            f"{CLAIMS_DIR}/claims.html",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{LOGS}/claims_table.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        claims=CLAIMS,
        training=TRAINING,
        elements=ELEMENTS,
        # The checkout whose commit the table names.
        workdir=workflow.basedir,
    script:
        "../scripts/claims_table.py"
