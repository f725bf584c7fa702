"""``hoptac train``: the seed dataset → one spaCy pipeline (ner + sector_classifier); determinism; --only;
a CoNLL dataset with other labels; bad inputs. Tiny max_steps keep it fast."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SEED_ANNOTATIONS, hoptac

from hoptac.model import blank_vi

TINY = ["--set", "training.max_steps=20", "--set", "training.eval_frequency=10"]
SAMPLE = ("Lãnh đạo thành phố Hà Nội và tỉnh Vĩnh Phúc ký kết hợp tác phát triển du lịch, "
          "nông nghiệp với tổng vốn 10.900 tỷ đồng.")


@pytest.fixture(scope="module")
def seed_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "seed"
    hoptac("dataset", "build", SEED_ANNOTATIONS / "hanoi-vi-ca-nuoc.json", "-o", out, check=True)
    return out


@pytest.fixture(scope="module")
def seed_model(seed_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    result = hoptac("train", seed_dataset, "-o", out, *TINY, check=True)
    assert "trained" in result.stdout.strip().splitlines()[-1]
    return out


def _load(path: Path):
    from hoptac.model import load_model

    return load_model(path)


@pytest.mark.slow
def test_model_loads_and_predicts_ents_and_cats(seed_model, seed_dataset):
    from hoptac.train.dataset import dataset_labels

    nlp = _load(seed_model)
    assert nlp.pipe_names[-2:] == ["ner", "sector_classifier"]
    entities, sectors = dataset_labels(seed_dataset)
    assert set(nlp.get_pipe("ner").labels) <= set(entities)
    doc = nlp(SAMPLE)
    assert [t.text for t in doc] == [t.text for t in blank_vi()(SAMPLE)]  # the dataset's tokenizer
    assert list(doc.cats) == sectors
    assert all(0.0 <= s <= 1.0 for s in doc.cats.values())
    pipe = nlp.get_pipe("sector_classifier")
    assert len(pipe.thresholds) == len(sectors)
    assert doc._.sectors == [s for s, t in zip(sectors, pipe.thresholds) if doc.cats[s] >= t]
    for ent in doc.ents:
        assert ent.label_ in entities


@pytest.mark.slow
def test_sector_file_loads_only_with_listed_types(seed_model):
    import skops.io as sio

    from hoptac.components import TRUSTED_TYPES

    path = seed_model / "sector_classifier" / "model.skops"
    assert set(sio.get_untrusted_types(file=str(path))) <= set(TRUSTED_TYPES)
    assert not list((seed_model / "sector_classifier").glob("*.pkl"))


@pytest.mark.slow
def test_sector_keywords_are_features_saved_with_the_model(seed_model):
    from hoptac.components import KEYWORD_MARK
    from hoptac.lexicon import sector_keywords

    nlp = _load(seed_model)
    pipe = nlp.get_pipe("sector_classifier")
    assert pipe.keywords == {k: sorted(set(v)) for k, v in sector_keywords(pipe.labels).items()}
    assert "du lịch" in pipe.keywords["TOURISM"]
    text = pipe.features(nlp.make_doc("Hai bên hợp tác phát triển du lịch và giao thông."))
    assert text.endswith(f"{KEYWORD_MARK}TOURISM {KEYWORD_MARK}TRANSPORT")
    blocks = dict(pipe.model.named_steps["features"].transformer_list)
    assert "keywords" in blocks and "chars" not in blocks  # configs/sectors.yml: chars null
    assert sorted(blocks["keywords"].vocabulary_) == sorted(f"{KEYWORD_MARK}{s}" for s in pipe.keywords)
    assert not any(w.startswith("_") for w in blocks["words"].vocabulary_)  # markers are not words


@pytest.mark.slow
def test_same_data_same_config_same_model(seed_dataset, seed_model, tmp_path):
    again = tmp_path / "again"
    hoptac("train", seed_dataset, "-o", again, *TINY, check=True)
    for part in ("tok2vec/model", "ner/model"):
        assert (again / part).read_bytes() == (seed_model / part).read_bytes(), part
    a, b = _load(seed_model), _load(again)
    texts = [SAMPLE, "Chủ tịch UBND tỉnh Bến Tre Trần Ngọc Tam làm việc với TP.HCM về logistics."]
    for da, db in zip(a.pipe(texts), b.pipe(texts)):
        assert [(e.start_char, e.end_char, e.label_) for e in da.ents] == [(e.start_char, e.end_char, e.label_) for e in db.ents]
        assert da.cats == db.cats


@pytest.mark.slow
def test_only_sectors_keeps_the_ner(seed_dataset, seed_model, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(seed_model, model)
    config = tmp_path / "sectors.yml"
    config.write_text("logistic_regression: {C: 0.01}\n", encoding="utf-8")
    result = hoptac("train", seed_dataset, "-o", model, "--only", "sectors", "--sectors-config", config, check=True)
    assert "sector" in result.stdout
    assert (model / "ner" / "model").read_bytes() == (seed_model / "ner" / "model").read_bytes()
    old, new = _load(seed_model), _load(model)
    assert new.pipe_names == old.pipe_names
    assert new(SAMPLE).cats != old(SAMPLE).cats  # a much smaller C: other probabilities
    # each model's config records the settings it was trained with: the file's C, the defaults elsewhere
    from hoptac.train.sectors import sector_defaults

    defaults = sector_defaults()
    recorded = {k: v for k, v in new.config["components"]["sector_classifier"].items() if k != "factory"}
    assert recorded == {**defaults, "logistic_regression": {**defaults["logistic_regression"], "C": 0.01}}
    assert old.config["components"]["sector_classifier"]["logistic_regression"]["C"] == 1.0  # configs/sectors.yml
    assert new.get_pipe("sector_classifier").settings == recorded


@pytest.mark.slow
def test_train_pipeline_returns_what_it_trained(seed_dataset, tmp_path, caplog):
    import logging

    import spacy
    from hoptac.train.dataset import dataset_labels
    from hoptac.train.pipeline import train_pipeline

    from hoptac.resources import NER_CONFIG, SECTORS_CONFIG

    caplog.set_level(logging.INFO, logger="hoptac")
    out = tmp_path / "sectors-only"
    result = train_pipeline(seed_dataset, out, config=NER_CONFIG, sectors_config=SECTORS_CONFIG, only="sectors")
    assert result.model_dir == out and result.seconds > 0
    assert result.ner == "none" and result.ner_steps is None  # no previous model to keep a ner from
    assert result.sectors == "trained" and result.sector_labels == dataset_labels(seed_dataset)[1]
    assert 0.0 <= result.sector_dev_micro_f1 <= 1.0
    assert result.summary() == f"trained {out} in {result.seconds:.0f}s: sector dev micro-F1 {result.sector_dev_micro_f1:.3f}"
    assert spacy.load(out).get_pipe("sector_classifier").labels == result.sector_labels  # load_model needs a ner
    # progress goes to the "hoptac" loggers, not to stdout
    assert any(r.name == "hoptac.train.pipeline" and r.getMessage().startswith("[sectors]") for r in caplog.records)

    again = train_pipeline(seed_dataset, out, config=NER_CONFIG, only="ner", overrides=["training.max_steps=5"])
    assert again.ner == "trained" and again.sectors == "kept" and again.sector_labels == result.sector_labels
    assert again.ner_steps > 0 and spacy.load(out).meta["hoptac"]["ner"]["steps"] == again.ner_steps
    assert again.ner_labels and set(again.ner_labels) <= set(dataset_labels(seed_dataset)[0])


@pytest.mark.slow
def test_only_ner_keeps_the_sectors_or_has_none(seed_dataset, seed_model, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(seed_model, model)
    hoptac("train", seed_dataset, "-o", model, "--only", "ner", "--set", "training.max_steps=5", check=True)
    old, new = _load(seed_model), _load(model)
    assert "sector_classifier" in new.pipe_names
    assert new(SAMPLE).cats == old(SAMPLE).cats
    assert (model / "ner" / "model").read_bytes() != (seed_model / "ner" / "model").read_bytes()

    fresh = tmp_path / "fresh"
    hoptac("train", seed_dataset, "-o", fresh, "--only", "ner", *TINY, check=True)
    assert "ner" in _load(fresh).pipe_names and "sector_classifier" not in _load(fresh).pipe_names


CONLL_TRAIN = """-DOCSTART- O

Ông O
Nguyễn_Văn_An B-PER
làm_việc O
tại O
Công_ty B-ORG
Vinamilk I-ORG
. O

Bà O
Trần_Thị_Bình B-PER
gặp O
Ngân_hàng B-ORG
Nhà_nước I-ORG
. O
"""

CONLL_TEST = """Ông O
Lê_Văn_Cường B-PER
đến O
Công_ty B-ORG
Viettel I-ORG
. O
"""


@pytest.mark.slow
def test_conll_dataset_with_other_labels_trains_and_evaluates(tmp_path):
    import json

    (tmp_path / "train.conll").write_text(CONLL_TRAIN * 3, encoding="utf-8")
    (tmp_path / "test.conll").write_text(CONLL_TEST, encoding="utf-8")
    ds = tmp_path / "ds"
    hoptac("dataset", "from-conll", "--train", tmp_path / "train.conll", "--test", tmp_path / "test.conll",
           "-o", ds, check=True)
    model = tmp_path / "model"
    result = hoptac("train", ds, "-o", model, *TINY, check=True)
    assert "no sector classifier" in result.stderr  # logged
    # spaCy's table, redirected: no colour codes, no temporary folder that is gone by now
    assert "\x1b[" not in result.stderr and "hoptac-train-" not in result.stderr + result.stdout
    assert "Saved pipeline to output directory" not in result.stderr
    assert result.stdout.strip().endswith("sectors: none (dataset has no sectors)")  # the result
    nlp = _load(model)
    assert sorted(nlp.get_pipe("ner").labels) == ["ORG", "PER"]
    assert "sector_classifier" not in nlp.pipe_names
    report = tmp_path / "report"
    hoptac("evaluate", model, ds, "-o", report, check=True)
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics) == {"ner", "ner_lenient", "data"}
    assert set(metrics["ner"]["per_label"]) >= {"ORG", "PER"}
    assert metrics["ner"]["per_label"]["PER"]["support"] == 1
    assert metrics["data"]["entities"] == 2


@pytest.mark.parametrize("args, needle", [
    (["train", "/nonexistent/dataset", "-o", "{tmp}/m"], "no such dataset folder"),
    (["train", "{tmp}/plain", "-o", "{tmp}/m"], "not a dataset folder"),
    (["train", "{ds}", "-o", "{tmp}/m", "--set", "training.max_steps"], "expected section.key=value"),
    (["train", "{ds}", "-o", "{tmp}/m", "--config", "{tmp}/none.cfg"], "NER config not found"),
    (["train", "{ds}", "-o", "{tmp}/m", "--only", "both"], "--only must be"),
    (["train", "{ds}", "-o", "{tmp}/m", "--set", "training.max_steps=abc"],
     '--set training.max_steps="abc": Input should be a valid integer'),
    (["train", "{ds}", "-o", "{tmp}/m", "--sectors-config", "{tmp}/sectors.yml"], "sectors.yml: unknown key 'C'"),
])
@pytest.mark.slow
def test_bad_training_input_is_one_line_exit_2(args, needle, seed_dataset, tmp_path):
    args = [a.format(tmp=tmp_path, ds=seed_dataset) for a in args]
    (tmp_path / "plain").mkdir()
    (tmp_path / "sectors.yml").write_text("C: 10\n", encoding="utf-8")  # belongs under logistic_regression
    result = hoptac(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()  # progress lines may come first; the error is one line, the last
    errors = [line for line in lines if line.startswith("hoptac: error:")]
    assert errors == lines[-1:] and needle in errors[0] and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "m").exists()


NEWS_LINES = [
    {"id": "news-1", "title": "Hà Nội và Hải Phòng hợp tác",
     "text": "Hà Nội và Hải Phòng hợp tác\nLãnh đạo thành phố Hà Nội và thành phố Hải Phòng ký kết thỏa thuận hợp tác phát triển du lịch.\n"
             "Tổng vốn đầu tư của dự án là 10.900 tỷ đồng, theo Chủ tịch UBND tỉnh Nguyễn Văn An."},
    {"id": "news-2", "title": "Cần Thơ thu hút đầu tư",
     "text": "Cần Thơ thu hút đầu tư\nTP Cần Thơ đã thu hút 87 doanh nghiệp đầu tư vào lĩnh vực nông nghiệp công nghệ cao."},
]


def test_silver_sample_is_seeded_and_leaves_dataset_articles_out(tmp_path):
    import json

    from hoptac.train.silver import sample_paragraphs

    news = tmp_path / "news.jsonl"
    news.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in NEWS_LINES) + "\n", encoding="utf-8")
    rows, seen = sample_paragraphs([news], 2, exclude_docs=set())
    assert seen == 3 and len(rows) == 2  # titles are not drawn
    assert sample_paragraphs([news], 2, exclude_docs=set()) == (rows, seen)
    rows, seen = sample_paragraphs([news], 5, exclude_docs={"news-1"})
    assert seen == 1 and {r["doc_id"] for r in rows} == {"news-2"}
    # a copy of a dataset article under another id is left out by its title
    rows, seen = sample_paragraphs([news], 5, exclude_docs=set(), exclude_titles={"hà nội và hải phòng hợp tác"})
    assert {r["doc_id"] for r in rows} == {"news-2"}


@pytest.mark.slow
def test_training_with_silver_paragraphs(seed_dataset, tmp_path):
    import json

    news = tmp_path / "news.jsonl"
    news.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in NEWS_LINES) + "\n", encoding="utf-8")
    model = tmp_path / "m"
    result = hoptac("train", seed_dataset, "-o", model, "--silver", news, "--set", "hoptac.silver_size=2",
                    "--set", "hoptac.gold_repeat=1", *TINY, check=True)
    assert "[silver] 2 paragraphs with an entity" in result.stderr  # progress is logged to stderr
    assert "gold ×1 + 2 silver" in result.stderr and "[silver]" not in result.stdout
    meta = json.loads((model / "meta.json").read_text(encoding="utf-8"))
    assert meta["hoptac"]["silver_size"] == 2


@pytest.mark.parametrize("setting, overrides, needle", [
    ("silver_sise = 100", {}, "unknown setting 'silver_sise'"),
    ("", {"hoptac.gold_repeat": -1}, "gold_repeat must be a whole number"),
])
def test_bad_hoptac_settings_are_one_line_errors(tmp_path, setting, overrides, needle):
    from hoptac.errors import HoptacError
    from hoptac.resources import NER_CONFIG
    from hoptac.train.ner import hoptac_settings

    config = tmp_path / "ner.cfg"
    text = NER_CONFIG.read_text(encoding="utf-8")
    assert "[hoptac]\n" in text
    config.write_text(text.replace("[hoptac]\n", f"[hoptac]\n{setting}\n"), encoding="utf-8")
    with pytest.raises(HoptacError, match=needle) as info:
        hoptac_settings(config, overrides)
    assert str(config) in str(info.value) and "\n" not in str(info.value)


def test_sectors_without_any_keyword_in_training_text_train_without_the_keyword_block():
    from hoptac.train.sectors import sector_defaults, train_sectors

    cfg = sector_defaults()
    cfg.update(chars=None, keyword_priors=False)
    rows = [{"tokens": ["ông", "A", "phát biểu"], "sectors": ["TOURISM"]},
            {"tokens": ["bà", "B", "dự", "họp"], "sectors": []}]
    model = train_sectors(rows, [], ["TOURISM", "TRANSPORT"], cfg)
    assert model.keywords_ is None
    assert [name for name, _ in model.pipeline_.named_steps["features"].transformer_list] == ["words"]


@pytest.mark.parametrize("text, needle", [
    ("C: 10\n", "unknown key 'C'"),
    ("logistic_regression: {C: 2.0, penalty: l1}\n", "unknown key logistic_regression.penalty"),
    ("chars: {min_df: 2}\n", "'chars' needs ngram_range, min_df and sublinear_tf"),
    ("words: [1, 2]\n", "'words' must be a mapping"),
])
def test_sectors_config_is_checked_against_the_factory_settings(text, needle, tmp_path):
    from hoptac.train.sectors import load_sectors_config

    from hoptac.errors import HoptacError

    path = tmp_path / "sectors.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HoptacError) as error:
        load_sectors_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


def test_sectors_config_sets_values_over_the_factory_defaults(tmp_path):
    import spacy
    from hoptac.train.sectors import load_sectors_config, sector_defaults

    from hoptac.components import FACTORY
    from hoptac.resources import SECTORS_CONFIG

    defaults = sector_defaults()
    assert defaults == dict(spacy.Language.get_factory_meta(FACTORY).default_config)
    path = tmp_path / "sectors.yml"
    path.write_text("words: {min_df: 2}\nchars: {ngram_range: [2, 4], min_df: 1, sublinear_tf: true}\n", encoding="utf-8")
    cfg = load_sectors_config(path)
    assert cfg["words"] == {**defaults["words"], "min_df": 2}
    assert cfg["chars"] == {"ngram_range": [2, 4], "min_df": 1, "sublinear_tf": True}
    assert {k: v for k, v in cfg.items() if k not in ("words", "chars")} == \
        {k: v for k, v in defaults.items() if k not in ("words", "chars")}
    assert load_sectors_config(None) == defaults
    assert set(load_sectors_config(SECTORS_CONFIG)) == set(defaults)  # the committed file passes the check


def test_accurate_config_differs_from_the_default_only_where_it_says():
    import spacy

    from hoptac.resources import NER_CONFIG

    def flat(config, prefix=""):
        out = {}
        for key, value in config.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    accurate_path = NER_CONFIG.with_name("ner-accurate.cfg")
    default = flat(spacy.util.load_config(NER_CONFIG, interpolate=False))
    accurate = flat(spacy.util.load_config(accurate_path, interpolate=False))
    assert default.keys() == accurate.keys()
    changed = {key: (default[key], accurate[key]) for key in default if default[key] != accurate[key]}
    assert changed == {
        "components.tok2vec.model.encode.width": (48, 96),
        "components.tok2vec.model.encode.depth": (2, 4),
        "components.tok2vec.model.encode.maxout_pieces": (2, 3),
        "components.ner.model.use_upper": (False, True),
        "training.dropout": (0.2, 0.1),
    }
    marked = accurate_path.read_text(encoding="utf-8").count("# accurate:")
    assert marked == len(changed)
