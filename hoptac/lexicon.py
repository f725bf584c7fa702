"""Word lists handed to the trained pipeline, all drawn from ``configs/rules.yml`` and the gazetteer.

The rules (``annotate/rules.py``) *apply* these lists; the model only gets them
as *features* whose weight it learns: the tokenizer's places, the lexicon
features of the NER (``hoptac_lexicon``) and the sector keywords of the sector
classifier. Each list is made here, once.
"""

from __future__ import annotations

from hoptac.gazetteer import gazetteer, load_rules_config


def tokenizer_places() -> list[str]:
    """Place names the tokenizer may split off a glued word (less common given names: "Đức")."""
    given = {name.casefold() for name in load_rules_config().get("locality", {}).get("given_names", [])}
    return sorted(name for name in gazetteer().free if name.casefold() not in given)


def rules_lexicon() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Word lists for the lexicon features: the gazetteer and the lists of ``configs/rules.yml``.

    Categories are feature names, not entity labels: the NER learns from the
    data how far each list predicts which label.
    """
    cfg, gaz = load_rules_config(), gazetteer()
    loc, off, fld, fig = (cfg.get(k, {}) for k in ("locality", "official", "field", "figure"))

    def strings(*lists) -> list[str]:
        return [str(x) for items in lists for x in (items or []) if isinstance(x, (str, int, float))]

    phrases = {
        "loc": strings(gaz.free), "ward": strings(gaz.ward),
        "admin": strings(loc.get("admin_words"), loc.get("zone_words")),
        "pair": strings(loc.get("pair_forms")),
        "title": strings(off.get("titles")), "hon": strings(off.get("honorifics"), off.get("weak_honorifics")),
        "org": strings(off.get("org_words")),
        "field": strings(fld.get("lexicon")), "generic": strings(fld.get("generic")), "cue": strings(fld.get("cues")),
        "scale": strings(fig.get("scale_words")), "unit": strings(fig.get("units")),
        "clf": strings(fig.get("classifiers")), "time": strings(fig.get("time_words")),
        "notfig": strings(fig.get("not_after")),
    }
    first = {"surname": strings(off.get("surnames"))}
    return phrases, first


def sector_keywords(labels: list[str]) -> dict[str, list[str]]:
    """Keywords of ``configs/rules.yml`` for the dataset's sectors (sectors without any are left out)."""
    keywords = load_rules_config().get("sectors") or {}
    return {label: [str(k) for k in keywords[label]] for label in labels if keywords.get(label)}
