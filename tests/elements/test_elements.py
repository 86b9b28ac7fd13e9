"""The Si -> Ge stage: Stillinger-Weber reference, periodic graphs, DimeNet++ forces, weight
transfer, training resume, MD stability criteria, structure analysis, config checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.elements import experiments as X
from mlip_transfer.elements.data import frame_row, load_frames, write_dataset
from mlip_transfer.elements.dimenet import (
    DimeNetPP,
    DimeNetSettings,
    SphericalBasis,
    energy_and_forces,
    legendre,
    save_model,
    spherical_bessel,
)
from mlip_transfer.elements.graph import build_graph, collate
from mlip_transfer.elements.md import MDSettings, run_nvt
from mlip_transfer.elements.sampling import SamplingSettings, sample_frames
from mlip_transfer.elements.stillinger_weber import (
    LATTICE_CONSTANTS,
    SW_PARAMETERS,
    diamond_cell,
    ground_state_check,
    sw_calculator,
)
from mlip_transfer.elements.structure import adf, rdf
from mlip_transfer.elements.training import (
    TrainSettings,
    evaluate,
    frame_graph,
    start_model,
    train_force_matching,
)

SMALL = DimeNetSettings(num_blocks=1)  # the study's sizes, one interaction block: fast tests
torch.set_num_threads(1)


def _energy_forces(model, atoms):
    graph = build_graph(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, cutoff=model.cutoff)
    dtype = next(model.parameters()).dtype
    energy, forces = energy_and_forces(model, collate([graph], dtype=dtype))
    return float(energy[0]), forces.detach().numpy()


def _random_model(seed=0, settings=SMALL):
    """A float64 model whose output layers are not zero (the stock init gives E = 0)."""
    torch.manual_seed(seed)
    model = DimeNetPP(settings=settings).double()
    with torch.no_grad():
        for block in model.output_blocks:
            block.lin.weight.normal_(0, 0.1)
    return model.eval()


def _rattled(element="Ge", repeats=1, amount=0.15, seed=1):
    atoms = diamond_cell(element, repeats=repeats)
    atoms.rattle(amount, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def ge_frames():
    settings = SamplingSettings(cell_repeats=1, equilibration_ps=0.02, interval_fs=10, trajectories=2)
    pool = sample_frames(element="Ge", temperature=1200, n_frames=4, set_name="pool", settings=settings, progress=False)
    test = sample_frames(element="Ge", temperature=1200, n_frames=2, set_name="test", settings=settings, progress=False)
    return pool, test


# ------------------------------------------------------------------ Stillinger-Weber reference


@pytest.mark.parametrize("element", ["Si", "Ge"])
def test_sw_ground_state_is_minus_two_epsilon_per_atom_at_the_reference_lattice_constant(element):
    check = ground_state_check(element, repeats=2)
    assert check["atoms"] == 64
    assert check["energy_per_atom_over_epsilon"] == pytest.approx(-2.0, abs=1e-6)
    assert check["ok"]
    # Away from the reference lattice constant the perfect crystal lies higher.
    for factor in (0.97, 1.03):
        atoms = diamond_cell(element, repeats=1, lattice_constant=LATTICE_CONSTANTS[element] * factor)
        atoms.calc = sw_calculator(element)
        assert atoms.get_potential_energy() / len(atoms) > -2 * SW_PARAMETERS[element]["epsilon"] + 1e-3


def test_faster_sw_neighbourhood_gives_matscipys_numbers():
    atoms = _rattled("Si", repeats=1, amount=0.2)
    stock = atoms.copy()
    atoms.calc = sw_calculator("Si")
    stock.calc = sw_calculator("Si", fast=False)
    assert atoms.get_potential_energy() == stock.get_potential_energy()
    np.testing.assert_array_equal(atoms.get_forces(), stock.get_forces())


def test_sw_parameters_are_the_studys():
    si, ge = SW_PARAMETERS["Si"], SW_PARAMETERS["Ge"]
    assert (si["epsilon"], si["sigma"], si["lambda1"]) == (2.1683, 2.0951, 21.0)
    assert (ge["epsilon"], ge["sigma"], ge["lambda1"]) == (1.93, 2.181, 31.0)
    for p in (si, ge):
        assert (p["a"], p["gamma"], p["A"], p["B"], p["p"]) == (1.80, 1.20, 7.049556277, 0.6022245584, 4)
        assert p["costheta0"] == pytest.approx(1 / 3)  # matscipy's sign for cos(theta0) = -1/3


def test_sampled_frames_are_canonical_labelled_and_hot(ge_frames, tmp_path):
    pool, test = ge_frames
    ground = -2 * SW_PARAMETERS["Ge"]["epsilon"]
    assert len(pool) == 4 and len({f.material_id for f in pool}) == 2  # two trajectories
    for frame in pool + test:
        assert frame.energy_per_atom > ground
        assert np.all(np.isfinite(frame.forces)) and np.abs(frame.forces).max() > 0.05
        assert frame_row(frame)["temperature"] == 1200.0
    assert not {f.material_id for f in pool} & {f.material_id for f in test}
    index = write_dataset(tmp_path, pool + test, element="Ge", ground_state_energy=ground)
    assert set(index["set"]) == {"pool", "test"}
    again = load_frames(tmp_path, sets=["test"], temperatures=[1200])
    assert [f.frame_id for f in again] == [f.frame_id for f in test]
    np.testing.assert_allclose(again[0].forces, test[0].forces)


def test_bad_reference_records_name_the_file_record_and_field(ge_frames, tmp_path):
    from mlip_transfer.data.dataset import write_frames

    frame = ge_frames[0][0]
    broken = replace(frame, extra={k: v for k, v in frame.extra.items() if k != "temperature"})
    path = tmp_path / "frames.jsonl.gz"
    write_frames(path, [broken])
    with pytest.raises(DataError) as error:
        load_frames(path)
    assert "frames.jsonl.gz" in str(error.value) and frame.frame_id in str(error.value)
    assert error.value.field == "extra.temperature"
    with pytest.raises(DataError, match="forces"):
        frame_row(replace(frame, forces=None))


# ------------------------------------------------------------------ periodic graph


@pytest.mark.parametrize("cubic", [True, False], ids=["8-atom cubic", "2-atom primitive"])
def test_small_cell_edges_reach_several_images_and_match_a_brute_force_count(cubic):
    # Cells smaller than twice the cutoff: neighbours are found through several images, and in
    # the 2-atom primitive cell (vectors of 4.0 Å) an atom's own images are neighbours too.
    atoms = bulk("Ge", "diamond", a=LATTICE_CONSTANTS["Ge"], cubic=cubic)
    atoms.rattle(0.1, seed=2)
    cutoff = 5.0
    graph = build_graph(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, cutoff=cutoff)
    # Brute force over images.
    cell, pos = atoms.cell.array, atoms.positions
    expected = 0
    per_atom = np.zeros(len(atoms), dtype=int)
    for i in range(len(atoms)):
        for j in range(len(atoms)):
            for shift in np.ndindex(9, 9, 9):
                s = np.array(shift) - 4
                if i == j and not s.any():
                    continue
                if np.linalg.norm(pos[j] + s @ cell - pos[i]) < cutoff:
                    expected += 1
                    per_atom[i] += 1
    assert graph.n_edges == expected
    pairs, counts = np.unique(np.stack([graph.src, graph.dst]), axis=1, return_counts=True)
    assert counts.max() >= 2  # the same neighbour through several images
    assert np.any(graph.src == graph.dst) == (not cubic)  # an atom's own images
    # Every edge's vector has the length of its pair distance, within the cutoff.
    vectors = pos[graph.dst] - pos[graph.src] + graph.offsets
    assert np.linalg.norm(vectors, axis=1).max() < cutoff
    # Triplets: every edge leaving j pairs with every edge arriving at j except its own reverse.
    arriving = np.bincount(graph.dst, minlength=len(atoms))
    assert graph.n_triplets == int(np.sum(arriving[graph.src] - 1))


def test_diamond_neighbour_shells_within_five_angstrom():
    atoms = diamond_cell("Si", repeats=1)
    graph = build_graph(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, cutoff=5.0)
    assert np.all(np.bincount(graph.dst) == 4 + 12 + 12)


def test_translated_rotated_and_wrapped_cells_give_the_same_energy_and_rotated_forces():
    model = _random_model()
    atoms = _rattled(repeats=1)
    energy, forces = _energy_forces(model, atoms)
    assert abs(energy) > 1e-3 and np.abs(forces).max() > 1e-4

    moved = atoms.copy()
    moved.positions += np.array([3.1, -7.4, 12.9])  # atoms leave the cell
    e2, f2 = _energy_forces(model, moved)
    assert e2 == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(f2, forces, atol=1e-9)

    rotation = _rotation(0.7, [1.0, 2.0, -0.5])
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    rotated.positions = atoms.positions @ rotation.T
    e3, f3 = _energy_forces(model, rotated)
    assert e3 == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(f3, forces @ rotation.T, atol=1e-9)

    # The same crystal described by another cell (a sheared choice of lattice vectors).
    sheared = atoms.copy()
    cell = atoms.cell.array.copy()
    cell[2] += cell[0] + cell[1]
    sheared.set_cell(cell, scale_atoms=False)
    e4, f4 = _energy_forces(model, sheared)
    assert e4 == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(f4, forces, atol=1e-9)


def _rotation(angle, axis):
    axis = np.asarray(axis) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_supercell_energy_is_extensive_and_forces_repeat():
    """A 2x2x2 repeat of a small cell is the same infinite crystal: 8x the energy, same forces."""
    model = _random_model()
    atoms = _rattled(repeats=1)
    energy, forces = _energy_forces(model, atoms)
    big = atoms.repeat(2)
    e_big, f_big = _energy_forces(model, big)
    assert e_big == pytest.approx(8 * energy, rel=1e-9)
    np.testing.assert_allclose(f_big, np.tile(forces, (8, 1)), atol=1e-9)


def test_forces_are_minus_the_energy_gradient_by_finite_differences():
    model = _random_model(seed=3)
    atoms = _rattled(repeats=1, amount=0.2, seed=5)
    atoms.positions[0] = atoms.cell.array.sum(0) - 0.05  # an atom at the cell corner
    _, forces = _energy_forces(model, atoms)
    h = 1e-5
    for atom, axis in [(0, 0), (0, 2), (3, 1), (7, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(_energy_forces(model, plus)[0] - _energy_forces(model, minus)[0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert np.abs(forces.sum(axis=0)).max() < 1e-9  # no net force


def test_spherical_basis_matches_scipy_and_torch_geometric():
    from scipy.special import eval_legendre, spherical_jn
    from torch_geometric.nn.models.dimenet import SphericalBasisLayer

    x = torch.linspace(0.5, 12.0, 50, dtype=torch.float64)
    for order in range(7):
        np.testing.assert_allclose(spherical_bessel(order, x).numpy(), spherical_jn(order, x.numpy()), atol=1e-10)
    c = torch.linspace(-1, 1, 21, dtype=torch.float64)
    for order, values in enumerate(legendre(7, c)):
        np.testing.assert_allclose(values.numpy(), eval_legendre(order, c.numpy()), atol=1e-12)
    # torch_geometric's sympy-built layer (small, so its construction stays quick).
    reference = SphericalBasisLayer(3, 2, cutoff=5.0, envelope_exponent=5)
    ours = SphericalBasis(num_spherical=3, num_radial=2, cutoff=5.0, envelope_exponent=5)
    generator = torch.Generator().manual_seed(0)
    dist = torch.rand(30, generator=generator, dtype=torch.float64) * 3.5 + 1.4
    angle = torch.rand(60, generator=generator, dtype=torch.float64) * math.pi
    idx = torch.randint(0, 30, (60,), generator=generator)
    np.testing.assert_allclose(ours(dist, torch.cos(angle), idx).numpy(), reference(dist, angle, idx).numpy(), atol=1e-5)


def test_graph_rejects_bad_structures():
    atoms = diamond_cell("Ge", repeats=1)
    positions = atoms.positions.copy()
    positions[1] = positions[0]
    with pytest.raises(DataError, match="same point"):
        build_graph(numbers=atoms.numbers, positions=positions, cell=atoms.cell.array, cutoff=5.0, name="x")
    positions[1, 0] = np.nan
    with pytest.raises(DataError, match="positions"):
        build_graph(numbers=atoms.numbers, positions=positions, cell=atoms.cell.array, cutoff=5.0)


# ------------------------------------------------------------------ training and transfer


def test_transfer_starts_from_every_si_weight_with_ges_embedding_copied(tmp_path):
    torch.manual_seed(11)
    source = DimeNetPP(settings=SMALL)
    with torch.no_grad():
        source.energy_shift[14] = -4.3
    path = save_model(source, tmp_path / "si.pt", element="Si")
    transfer, info = start_model("transfer", settings=SMALL, seed=0, source_model=path)
    scratch, _ = start_model("scratch", settings=SMALL, seed=0)
    src, tl, sc = source.state_dict(), transfer.state_dict(), scratch.state_dict()
    embedding = "emb.emb.weight"
    for name in src:
        if name != embedding:
            assert torch.equal(tl[name], src[name]), name
    assert torch.equal(tl[embedding][32], src[embedding][14])  # Ge starts as Si
    assert not torch.equal(tl[embedding][32], src[embedding][32])  # not Si's untrained Ge row
    assert torch.equal(tl[embedding][14], src[embedding][14])
    assert any(not torch.equal(sc[n], src[n]) for n in src if n != "energy_shift")
    assert "copied" in info["embedding"]
    with pytest.raises(ConfigError, match="architecture"):
        start_model("transfer", settings=replace(SMALL, hidden_channels=16), seed=0, source_model=path)


def test_fine_tuning_trains_every_weight_and_refits_the_energy_shift(ge_frames, tmp_path):
    pool, test = ge_frames
    torch.manual_seed(2)
    source = DimeNetPP(settings=SMALL)
    path = save_model(source, tmp_path / "si.pt")
    model, _ = start_model("transfer", settings=SMALL, seed=0, source_model=path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = train_force_matching(
        model=model, frames=pool, out_dir=tmp_path / "run", progress=False,
        settings=TrainSettings(max_steps=3, batch_size=2, learning_rate=1e-3, final_learning_rate=1e-4, checkpoint_every=0),
    )
    after = model.state_dict()
    for name, param in model.named_parameters():
        if name.startswith("emb.emb"):
            assert not torch.equal(after[name][32], before[name][32])  # Ge embedding trained
        elif name != "rbf.freq":
            assert not torch.equal(after[name], before[name]), f"{name} did not train"
    # Energy shift from the training energies: the mean training energy error is zero.
    assert summary["energy_shift_per_atom"]["Ge"] == pytest.approx(float(model.energy_shift[32]))
    graphs = [frame_graph(f, cutoff=5.0) for f in pool]
    energies, _ = energy_and_forces(model, collate(graphs))
    mean_error = np.mean([(float(e.detach()) - f.energy) for e, f in zip(energies, pool)])
    assert abs(mean_error) < 1e-3
    # evaluate's errors are those of the model's own predictions on the test frames, in meV.
    errors = evaluate(model, test)
    energies, forces = energy_and_forces(model, collate([frame_graph(f, cutoff=5.0) for f in test]))
    force_error = forces.detach().numpy() - np.concatenate([f.forces for f in test])
    energy_error = [(float(e.detach()) - f.energy) / f.n_atoms for e, f in zip(energies, test)]
    assert errors["finite"] and errors["n_frames"] == len(test)
    assert errors["force_mae_mev_per_a"] == pytest.approx(1000 * np.abs(force_error).mean(), rel=1e-4)
    assert errors["energy_mae_mev_per_atom"] == pytest.approx(1000 * np.abs(energy_error).mean(), rel=1e-4)


def test_interrupted_training_resumes_to_the_same_weights(ge_frames, tmp_path, monkeypatch):
    from mlip_transfer.elements import training

    pool, _ = ge_frames
    settings = TrainSettings(max_steps=4, batch_size=2, learning_rate=1e-3, final_learning_rate=1e-4, checkpoint_every=2)

    def fresh():
        model, _ = start_model("scratch", settings=SMALL, seed=4)
        return model

    reference = fresh()
    train_force_matching(model=reference, frames=pool, settings=settings, out_dir=tmp_path / "a", progress=False)

    calls = {"n": 0}
    original = training.energy_and_forces

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "energy_and_forces", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_force_matching(model=fresh(), frames=pool, settings=settings, out_dir=tmp_path / "b", progress=False)
    monkeypatch.setattr(training, "energy_and_forces", original)
    resumed = fresh()
    summary = train_force_matching(model=resumed, frames=pool, settings=settings, out_dir=tmp_path / "b", progress=False)
    assert summary["resumed_from_step"] == 2
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="other settings"):
        train_force_matching(model=fresh(), frames=pool[:3], settings=settings, out_dir=tmp_path / "b", progress=False)


# ------------------------------------------------------------------ MD and structure


class _Fake:
    """A calculator with a given force law, for the stability criteria."""

    def __new__(cls, kind):
        from ase.calculators.calculator import Calculator, all_changes

        class Fake(Calculator):
            implemented_properties = ["energy", "forces", "free_energy"]

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                n = len(self.atoms)
                if kind == "nan":
                    forces = np.full((n, 3), np.nan)
                elif kind == "collapse":  # pull atom 1 onto atom 0
                    forces = np.zeros((n, 3))
                    pull = self.atoms.get_distance(1, 0, mic=True, vector=True)
                    forces[1], forces[0] = 50 * pull, -50 * pull
                else:  # heat: forces along the velocities
                    forces = 20 * self.atoms.get_velocities() / (np.linalg.norm(self.atoms.get_velocities()) + 1e-12)
                self.results = {"energy": 0.0, "free_energy": 0.0, "forces": forces}

        return Fake()


@pytest.mark.parametrize("kind, reason", [("nan", "nan"), ("collapse", "overlap"), ("heat", "runaway")])
def test_stability_criteria_flag_each_failure(kind, reason):
    settings = MDSettings(temperature=600, duration_ps=0.4, timestep_fs=2, check_every=5, max_temperature_factor=2.0)
    result = run_nvt(atoms=diamond_cell("Ge", repeats=1), calculator=_Fake(kind), settings=settings, seed=0)
    assert not result["stable"] and result["reason"] == reason
    # Each failure shows at the first check (5 steps of 2 fs) and stops the run there, 0.39 ps early.
    assert result["steps"] == 5 and result["failed_at_ps"] == pytest.approx(0.01)
    assert len(result["frames"]) == 0
    if kind == "heat":
        assert result["max_temperature"] > settings.max_temperature_factor * settings.temperature


def test_stillinger_weber_md_is_stable_and_yields_frames():
    settings = MDSettings(temperature=1200, duration_ps=0.1, timestep_fs=2, check_every=5, sample_every_fs=10, equilibration_ps=0.02)
    result = run_nvt(atoms=diamond_cell("Ge", repeats=1), calculator=sw_calculator("Ge"), settings=settings, seed=0)
    assert result["stable"] and result["reason"] == "" and result["failed_at_ps"] is None
    assert result["steps"] == 50  # 0.1 ps of 2 fs steps, to the end
    # One frame every 10 fs from the end of the 0.02 ps equilibration: 20, 30, ..., 100 fs.
    assert result["frames"].shape == (9, 8, 3)
    assert np.isfinite(result["frames"]).all()


def test_rdf_and_adf_of_perfect_diamond():
    atoms = diamond_cell("Ge", repeats=2)
    r, g = rdf([atoms.positions], atoms.cell.array, r_max=5.0, bins=100)
    nn = LATTICE_CONSTANTS["Ge"] * math.sqrt(3) / 4
    assert r[np.flatnonzero(g)[0]] == pytest.approx(nn, abs=0.05)  # the first shell
    # Four neighbours in the first shell: integral of 4 pi r^2 rho g(r) up to the gap.
    rho = len(atoms) / atoms.get_volume()
    shell = r < 3.0
    coordination = np.sum(4 * np.pi * r[shell] ** 2 * rho * g[shell] * (r[1] - r[0]))
    assert coordination == pytest.approx(4, abs=0.01)
    theta, p = adf([atoms.positions], atoms.cell.array, cutoff=3.0, bins=180)
    assert theta[np.argmax(p)] == pytest.approx(109.47, abs=1.0)
    assert np.sum(p * (theta[1] - theta[0])) == pytest.approx(1.0)


# ------------------------------------------------------------------ experiments and config


def test_data_efficiency_table_reports_the_spread_over_seeds():
    import pandas as pd

    rows = [
        {"method": m, "size": n, "seed": s, "temperature": 1200.0, "n_frames": 5,
         "force_mae_mev_per_a": base / n + s, "force_rmse_mev_per_a": 0.0, "energy_mae_mev_per_atom": 1.0 + s}
        for m, base in (("scratch", 400.0), ("transfer", 200.0)) for n in (1, 10) for s in (0, 1)
    ]
    rows.append({**rows[0], "temperature": 300.0, "force_mae_mev_per_a": 999.0})
    table = X.data_efficiency(pd.DataFrame(rows), temperature=1200)
    row = table[(table["method"] == "scratch") & (table["size"] == 1)].iloc[0]
    assert row["force_mae_mev_per_a_mean"] == pytest.approx(400.5)
    assert row["force_mae_mev_per_a_std"] == pytest.approx(math.sqrt(0.5))
    assert row["n_seeds"] == 2
    markdown = X.data_efficiency_markdown(table)
    assert "| 1 | 400.5 ± 0.7 | 200.5 ± 0.7 |" in markdown
    with pytest.raises(DataError, match="training temperature"):
        X.data_efficiency(pd.DataFrame(rows), temperature=900)


def test_stability_table_counts_runs_and_reasons():
    records = [
        {"method": "scratch", "seed": 0, "stable": False, "reason": "overlap", "failed_at_ps": 0.5},
        {"method": "scratch", "seed": 1, "stable": True, "reason": "", "failed_at_ps": None},
        {"method": "transfer", "seed": 0, "stable": True, "reason": "", "failed_at_ps": None},
    ]
    table = X.stability_table(records).set_index("method")
    assert table.loc["scratch", "stable"] == 1 and table.loc["scratch", "overlap"] == 1
    assert table.loc["transfer", "runs"] == 1 and table.loc["transfer", "unstable"] == 0


def test_configs_state_their_scale_and_bad_element_settings_are_rejected():
    from mlip_transfer.core.config import load_config, validate_config

    default = load_config("config/config.yaml")
    assert X.scale_statement(default["elements"]).startswith("Scaled down from the paper")
    paper = load_config("config/paper.yaml")
    assert paper["elements"]["stability"]["runs"] == 100 and paper["elements"]["stability"]["duration_ps"] == 100
    assert X.scale_statement(paper["elements"]).startswith("Paper scale")
    bad = json.loads(json.dumps(default))
    bad["elements"]["stability"]["train_size"] = 7
    with pytest.raises(ConfigError, match="stability.train_size"):
        validate_config(bad)
    bad = json.loads(json.dumps(default))
    bad["elements"]["pool_size"] = 50
    with pytest.raises(ConfigError, match="pool_size"):
        validate_config(bad)


def test_interrupted_write_dataset_leaves_no_partial_file(ge_frames, tmp_path, monkeypatch):
    """A kill while ``frames.csv`` is written leaves no partial file at any final path."""
    from pathlib import Path

    import pandas as pd

    from mlip_transfer.data.dataset import read_frames

    pool, _ = ge_frames

    def killed(self, path, **_):
        Path(path).write_text("frame_id,element\n")  # the header, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path, pool, element="Ge", ground_state_energy=-3.86)
    assert [p.name for p in tmp_path.iterdir()] == ["frames.jsonl.gz"]  # complete, written first
    assert len(read_frames(tmp_path / "frames.jsonl.gz")) == len(pool)
