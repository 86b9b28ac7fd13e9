# Energy scale (paper Figs. 1 and 2): refit AtomRefs, correlate the functionals' energies before
# and after referencing, rank elements by their effect on formation-energy differences, and check
# the refit shifts against real MatPES DFT elemental energies.

ENERGY = f"{OUT}/energy_scale"
ENERGY_SCALE = config["energy_scale"]
ENERGY_SCALE_FIGURES = [
    "fig1a_element_occurrence",
    "fig1b_relaxed_energies",
    "fig1cd_element_importance",
    "fig2a_atomrefs",
    "fig2b_referenced_energies",
    "matpes_shift_check",
]


rule fit_atomrefs:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        materials=f"{DATA}/materials.csv",
        split=f"{DATA}/split.csv",
    output:
        table=f"{ENERGY}/atomrefs.csv",
        summary=f"{ENERGY}/atomref_fits.json",
    log:
        f"{LOGS}/fit_atomrefs.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        fit_split=ENERGY_SCALE["fit_split"],
    script:
        "../scripts/fit_atomrefs.py"


rule energy_scale_correlation:
    input:
        materials=f"{DATA}/materials.csv",
        atomrefs=f"{ENERGY}/atomrefs.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        correlation=f"{ENERGY}/correlation.json",
        referenced=f"{ENERGY}/referenced_energies.csv",
    log:
        f"{LOGS}/energy_scale_correlation.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        bootstrap=ENERGY_SCALE["bootstrap"],
        seed=ENERGY_SCALE["seed"],
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
    script:
        "../scripts/energy_scale_correlation.py"


rule element_importance:
    input:
        materials=f"{DATA}/materials.csv",
        # Atoms are counted per cell, one frame per material.
        frames=f"{DATA}/frames.jsonl.gz",
    output:
        f"{ENERGY}/element_importance.csv",
    log:
        f"{LOGS}/element_importance.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        tree=ENERGY_SCALE["tree"],
        scale_corrected=ENERGY_SCALE["scale_corrected"],
        scale_uncorrected=ENERGY_SCALE["scale_uncorrected"],
        min_atoms=ENERGY_SCALE["importance_min_atoms"],
    script:
        "../scripts/element_importance.py"


rule matpes_shift:
    input:
        atomrefs=f"{ENERGY}/atomrefs.csv",
        pbe="resources/reference/MatPES-PBE-Element-Refs.json.gz",
        r2scan="resources/reference/MatPES-r2SCAN-Element-Refs.json.gz",
    output:
        table=f"{ENERGY}/matpes_shift.csv",
        stats=f"{ENERGY}/matpes_shift.json",
    log:
        f"{LOGS}/matpes_shift.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/matpes_shift.py"


# Per element (issue 18): frames, shifts with bootstrap intervals, collinearity, settings-mismatch
# flag against MatPES ground states, recommendation; the bootstrap adds about a second.
rule diagnose_source_model:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        pbe="resources/reference/MatPES-PBE-Element-Refs.json.gz",
        r2scan="resources/reference/MatPES-r2SCAN-Element-Refs.json.gz",
    output:
        markdown=f"{ENERGY}/diagnose.md",
        json=f"{ENERGY}/diagnose.json",
        elements=multiext(
            f"{ENERGY}/diagnose_elements/elements", ".md", ".json", ".csv"
        ),
        # The two periodic tables (recommendation; settings-mismatch deviation) in the report.
        figure=report(
            f"{ENERGY}/diagnose_elements/elements.png",
            caption="../report/diagnose_elements.rst",
            category="Figures",
            subcategory="Energy scale (Figs. 1, 2)",
            labels={"figure": "diagnose_elements"},
        ),
    log:
        f"{LOGS}/diagnose_source_model.log",
    conda:
        "../../envs/chgnet.yaml"
    threads: 2
    resources:
        mem_mb=6000,
    params:
        data_dir=lambda wildcards, input: Path(input.frames).parent,
        model=ENERGY_SCALE["diagnose"]["model"],
        max_frames=ENERGY_SCALE["diagnose"]["max_frames"] or 10**9,
        bootstrap=ENERGY_SCALE["diagnose"]["bootstrap"],
        seed=ENERGY_SCALE["seed"],
        elements_dir=lambda wildcards, output: Path(output.elements[0]).parent,
    shell:
        "mlip-transfer -v diagnose --data {params.data_dir} --model {params.model}"
        " --functional r2scan --max-frames {params.max_frames} --json {output.json}"
        " --per-element-out {params.elements_dir} --bootstrap {params.bootstrap} --seed {params.seed}"
        " --expected-refs {input.pbe} {input.r2scan}"
        " > {output.markdown} 2> {log}"


rule energy_scale_figure:
    input:
        notebook="notebooks/{figure}.ipynb",
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
        provenance=f"{DATA}/provenance.json",
        atomrefs=f"{ENERGY}/atomrefs.csv",
        fits=f"{ENERGY}/atomref_fits.json",
        correlation=f"{ENERGY}/correlation.json",
        importance=f"{ENERGY}/element_importance.csv",
        shift=f"{ENERGY}/matpes_shift.csv",
    output:
        notebook=f"{NOTEBOOKS}/{{figure}}.ipynb",
        figures=report_figures(
            "{figure}",
            caption="../report/energy_scale_figure.rst",
            subcategory="Energy scale (Figs. 1, 2)",
        ),
    log:
        f"{LOGS}/{{figure}}.log",
    wildcard_constraints:
        figure="|".join(ENERGY_SCALE_FIGURES),
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.frames).parent,
        energy_dir=lambda wildcards, input: Path(input.atomrefs).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
        # Only Fig. 1a takes the element cutoff.
        extra=lambda wildcards: (
            f"-p element_cutoff {ENERGY_SCALE['element_cutoff']}"
            if wildcards.figure == "fig1a_element_occurrence"
            else ""
        ),
    shell:
        papermill_command("data_dir", "energy_dir", extra="{params.extra}")
