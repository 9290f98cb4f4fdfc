#!/usr/bin/env python3
"""Write the sacreBLEU parity fixtures of crates/rnnsearch-bleu.

Needs sacreBLEU 2.6.0 (pip install sacrebleu==2.6.0). Writes small text
streams and, from sacreBLEU's Python API, the numbers the Rust crate must
reproduce:

  tests/fixtures/*.txt        hypothesis and reference streams
  tests/fixtures/expected.json  corpus and sentence scores per setting
  tests/fixtures/tokenizers.json  tokenizer outputs line by line
  tests/fixtures/significance.json  bootstrap confidence intervals and
                                    paired bootstrap / randomization tests

Streams are read back exactly as the sacreBLEU CLI reads them (UTF-8,
newline="\\n", line.rstrip()) before scoring.

Usage: scripts/make-bleu-fixtures.py [--multi30k DIR] [--out DIR]
(DIR defaults: $MULTI30K_DIR or data/multi30k; crates/rnnsearch-bleu/tests/fixtures)
"""

import argparse
import gzip
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.bleu import _get_tokenizer
from sacrebleu.significance import PairedTest

if sacrebleu.__version__ != "2.6.0":
    sys.exit(f"need sacrebleu 2.6.0, found {sacrebleu.__version__}")

ROOT = Path(__file__).resolve().parent.parent
SB_VERSION = "version:" + sacrebleu.__version__

README_HYP = [
    "The dog bit the man.",
    "It wasn't surprising.",
    "The man had just bitten him.",
]
README_REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]

# Hand-made edge cases: empty lines, entities, digits with separators,
# Unicode punctuation and symbols, odd whitespace, casing traps.
EDGE = [
    # (hypothesis, reference 1, reference 2)
    ("", "", "Nothing here."),
    ("", "A reference for an empty hypothesis.", ""),
    ("Only a hypothesis.", "", ""),
    ("It costs $1,000.50, not 1.000,5 €.", "It costs $1,000.50 - not 1.000,5 €!", "The price is 1,000.5 dollars."),
    ("&quot;Hello&quot; &amp; &lt;world&gt; &amp;quot;", "\"Hello\" & <world> &quot;", "&quot;Hi&quot; &amp; world"),
    ("Fish & chips; 3-4 pieces (2015-2016).", "Fish &amp; chips: 3 - 4 pieces (2015–2016).", "fish and chips, 3-4 pieces"),
    ("«Bonjour», dit-il… «ça va?»", "« Bonjour », a-t-il dit… « Ça va ? »", "«Salut», dit-il."),
    ("Er sagte: „Das ist gut!“ — und ging.", "Er sagte: „Das ist sehr gut!“ – und ging.", "„Gut“, sagte er."),
    ("ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ. İstanbul'da ŞEHİR.", "οδός και σοφία. istanbul'da şehir.", "ΟΔΟΣ, ΣΟΦΙΑ"),
    ("我们今天去公园散步，天气很好。", "今天我们去公园散步，天气非常好。", "我们今天在公园里散步。"),
    ("東京は日本の首都です。人口は約1,400万人です。", "日本の首都は東京です。人口は約1400万人。", "東京は首都です。"),
    ("Tabs\tand\u00a0no-break\u3000spaces\u2003here .", "Tabs and no-break spaces here.", "Tabs\tand spaces"),
    ("Separators\x1cinside\x1dwords\x1e\x1fok", "Separators inside words ok", "separators\x85inside"),
    ("<skipped> The result was 3.14159 or 2,718.", "The result was 3.14159 or 2,718 .", "Result: 3.14 or 2.718"),
    ("a.b.c , d,e,f . 12.5% of 1/3", "a.b.c, d, e, f. 12.5 % of 1 / 3", "a b c d e f 12.5% 1/3"),
    ("Emoji 😀 and symbols ©®™ ±×÷ → ∞", "Emoji 😀 and symbols © ® ™ ± × ÷ → ∞", "Emoji and symbols"),
    ("MiXeD CaSe WoRdS Are HERE", "mixed case words are here", "Mixed Case Words Are Here"),
    ("trailing spaces   ", "trailing spaces", "  leading spaces"),
    ("   ", "only spaces above", "   "),
    ("(hi) [there] {you} 'quoted' \"double\"", "(hi) [there] {you} 'quoted' \"double\"", "hi there you"),
    ("Zahlen: 1.000.000 und 0,5 sowie -3 und 4-5.", "Zahlen: 1.000.000 und 0,5 sowie - 3 und 4 - 5.", "1000000 und 0.5"),
    ("Ⅻ ٣٤٥ ½ ² digits and numbers", "XII 345 1/2 2 digits and numbers", "digits"),
    ("Line with CRLF ending", "Line with CRLF ending", "line with crlf"),
]

# One-word lines (and a few with nothing), where every n-gram order above 1 is empty.
ONE_WORD = [
    ("Yes", "Yes", "Yes ."),
    ("No", "Nope", "no"),
    ("", "Hello", "Hi"),
    ("Hund", "Hund", "Der Hund"),
    ("Ja.", "Ja", "Ja !"),
    ("a", "b", "a"),
    ("Straße", "STRASSE", "Strasse"),
    ("。", "。", "！"),
    ("42", "42.", "forty-two"),
    ("word", "", "word"),
]

CJK = [
    ("我爱自然语言处理。", "我喜欢自然语言处理。", "我热爱自然语言处理！"),
    ("机器翻译的质量越来越好了。", "机器翻译的质量变得越来越好。", "机器翻译质量越来越高。"),
    ("彼は毎朝コーヒーを飲みます。", "彼は毎朝コーヒーを飲む。", "毎朝、彼はコーヒーを飲みます。"),
    ("서울은 한국의 수도입니다.", "한국의 수도는 서울입니다.", "서울은 수도입니다."),
    ("「こんにちは」と彼女は言った。", "「こんにちは」と彼女が言った。", "彼女は「こんにちは」と言った。"),
    ("价格是１２３４元，约合$１７６。", "价格为１２３４元（约１７６美元）。", "价格是1234元。"),
]


def perturb(words, rng, edits):
    words = list(words)
    for _ in range(edits):
        if len(words) < 2:
            break
        op = rng.random()
        i = rng.randrange(len(words))
        if op < 0.3:
            del words[i]
        elif op < 0.6:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op < 0.8:
            words[i] = words[i].lower() if rng.random() < 0.5 else words[i].upper()
        else:
            words.insert(i, rng.choice(["der", "die", "und", ",", ".", "ein"]))
    return words


def write_stream(out, name, lines, crlf_last=False):
    text = ""
    for k, line in enumerate(lines):
        end = "\r\n" if crlf_last and k == len(lines) - 1 else "\n"
        text += line + end
    (out / name).write_bytes(text.encode("utf-8"))


def read_stream(out, name):
    # Exactly what the sacreBLEU CLI does with a file.
    with open(out / name, encoding="utf-8", newline="\n") as fh:
        return [line.rstrip() for line in fh]


def make_texts(out, multi30k):
    sets = {}
    write_stream(out, "readme.hyp.txt", README_HYP)
    write_stream(out, "readme.ref1.txt", README_REFS[0])
    write_stream(out, "readme.ref2.txt", README_REFS[1])
    sets["readme"] = ("readme.hyp.txt", ["readme.ref1.txt", "readme.ref2.txt"])

    write_stream(out, "edge.hyp.txt", [h for h, _, _ in EDGE], crlf_last=True)
    write_stream(out, "edge.ref1.txt", [r for _, r, _ in EDGE])
    write_stream(out, "edge.ref2.txt", [r for _, _, r in EDGE])
    sets["edge"] = ("edge.hyp.txt", ["edge.ref1.txt", "edge.ref2.txt"])

    write_stream(out, "oneword.hyp.txt", [h for h, _, _ in ONE_WORD])
    write_stream(out, "oneword.ref1.txt", [r for _, r, _ in ONE_WORD])
    write_stream(out, "oneword.ref2.txt", [r for _, _, r in ONE_WORD])
    sets["oneword"] = ("oneword.hyp.txt", ["oneword.ref1.txt", "oneword.ref2.txt"])

    write_stream(out, "cjk.hyp.txt", [h for h, _, _ in CJK])
    write_stream(out, "cjk.ref1.txt", [r for _, r, _ in CJK])
    write_stream(out, "cjk.ref2.txt", [r for _, _, r in CJK])
    sets["cjk"] = ("cjk.hyp.txt", ["cjk.ref1.txt", "cjk.ref2.txt"])

    path = Path(multi30k) / "val.de.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        val = [line.rstrip("\n") for line in fh][:100]
    rng = random.Random(20240611)
    hyps, refs2 = [], []
    for k, line in enumerate(val):
        words = line.split()
        if k % 37 == 5:
            hyps.append("")
        else:
            hyps.append(" ".join(perturb(words, rng, 1 + k % 4)))
        refs2.append(" ".join(perturb(words, rng, 2)))
    write_stream(out, "multi30k.hyp.txt", hyps)
    write_stream(out, "multi30k.ref1.txt", val)
    write_stream(out, "multi30k.ref2.txt", refs2)
    sets["multi30k"] = ("multi30k.hyp.txt", ["multi30k.ref1.txt", "multi30k.ref2.txt"])
    return sets


def generic_sig(sig):
    return sig.replace(SB_VERSION, "version:{VERSION}")


def bleu_case(name, set_name, nrefs, hyps, refs, level, **kw):
    case = {"name": name, "metric": "bleu", "level": level, "set": set_name,
            "nrefs": nrefs, "options": dict(kw)}
    if level == "corpus":
        metric = BLEU(**kw)
        score = metric.corpus_score(hyps, refs)
        stats = metric._extract_corpus_statistics(hyps, refs)
        total = [sum(col) for col in zip(*stats)] if stats else [0] * 10
        case.update(
            score=score.score,
            sys_len=total[0], ref_len=total[1],
            counts=total[2:6], totals=total[6:10],
            signature=generic_sig(str(metric.get_signature())),
        )
        if kw["smooth_method"] in ("exp", "floor") and "smooth_value" not in kw:
            # The text line holds the signature too.
            del case["signature"]
            case["text"] = generic_sig(score.format(width=2, signature=str(metric.get_signature())))
    else:
        metric = BLEU(effective_order=True, **kw)
        scores = [metric.sentence_score(h, [r[i] for r in refs]) for i, h in enumerate(hyps)]
        case.update(
            scores=[s.score for s in scores],
            signature=generic_sig(str(metric.get_signature())),
        )
        if len(hyps) <= 30 and kw["tokenize"] == "13a" and kw["smooth_method"] == "exp":
            sig = str(metric.get_signature())
            # What follows "BLEU|<signature> = " on each line.
            case["text_tails"] = [s.format(width=2, signature=sig).split(" = ", 1)[1]
                                  for s in scores]
        case["options"]["effective_order"] = True
    return case


def chrf_case(name, set_name, nrefs, hyps, refs, level, **kw):
    case = {"name": name, "metric": "chrf", "level": level, "set": set_name,
            "nrefs": nrefs, "options": dict(kw)}
    metric = CHRF(**kw)
    if level == "corpus":
        score = metric.corpus_score(hyps, refs)
        case.update(
            score=score.score,
            signature=generic_sig(str(metric.get_signature())),
            text=generic_sig(score.format(width=2, signature=str(metric.get_signature()))),
        )
    else:
        scores = [metric.sentence_score(h, [r[i] for r in refs]) for i, h in enumerate(hyps)]
        case.update(
            scores=[s.score for s in scores],
            signature=generic_sig(str(metric.get_signature())),
        )
    return case


TER_OPTIONS = [dict(normalized=n, no_punct=p, asian_support=a, case_sensitive=c)
               for n in (False, True) for p in (False, True)
               for a in (False, True) for c in (False, True)]


def ter_case(name, set_name, nrefs, hyps, refs, level, **kw):
    case = {"name": name, "metric": "ter", "level": level, "set": set_name,
            "nrefs": nrefs, "options": dict(kw)}
    metric = TER(**kw)
    if level == "corpus":
        score = metric.corpus_score(hyps, refs)
        sig = str(metric.get_signature())
        case.update(score=score.score, num_edits=score.num_edits,
                    ref_length=score.ref_length, signature=generic_sig(sig),
                    text=generic_sig(score.format(width=2, signature=sig)))
    else:
        scores = [metric.sentence_score(h, [r[i] for r in refs]) for i, h in enumerate(hyps)]
        case.update(scores=[s.score for s in scores],
                    signature=generic_sig(str(metric.get_signature())))
    return case


def make_ter_and_zh_cases(out, sets):
    cases = []
    for set_name, (hyp_file, ref_files) in sets.items():
        hyps = read_stream(out, hyp_file)
        all_refs = [read_stream(out, f) for f in ref_files]
        for nrefs in (1, 2):
            refs = all_refs[:nrefs]
            here = (set_name, nrefs, hyps, refs)
            tag = f"{set_name}/{nrefs}ref"
            options = TER_OPTIONS if set_name != "multi30k" else TER_OPTIONS[::5]
            for kw in options:
                flags = "".join(k[0] if v else "-" for k, v in kw.items())
                cases.append(ter_case(f"{tag}/ter/{flags}", *here, "corpus", **kw))
            for kw in (TER_OPTIONS[0], TER_OPTIONS[-1]):
                flags = "".join(k[0] if v else "-" for k, v in kw.items())
                cases.append(ter_case(f"{tag}/sentence-ter/{flags}", *here, "sentence", **kw))
            for smooth in ("exp", "floor"):
                cases.append(bleu_case(f"{tag}/bleu/zh/{smooth}/None/lc=False", *here, "corpus",
                                       tokenize="zh", smooth_method=smooth, lowercase=False))
            if set_name in ("cjk", "edge"):
                cases.append(bleu_case(f"{tag}/sentence-bleu/zh/exp", *here, "sentence",
                                       tokenize="zh", smooth_method="exp"))
    return cases


def make_systems(out, multi30k):
    """A reference and four systems over 400 val sentences, for the tests."""
    path = Path(multi30k) / "val.de.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        ref = [line.rstrip("\n") for line in fh][:400]
    rng = random.Random(31)
    write_stream(out, "systems.ref.txt", ref)
    names = []
    for k, edits in enumerate((3, 4, 3, 1)):
        lines = []
        for j, line in enumerate(ref):
            words = line.split()
            if k == 2 and j % 10:
                # Nearly the baseline: its p-values should be high.
                lines.append(names and read_stream(out, names[0])[j])
                continue
            lines.append(" ".join(perturb(words, rng, edits)))
        name = f"systems.sys{k}.txt"
        write_stream(out, name, lines)
        names.append(name)
    return names


def significance_metrics():
    return {"BLEU": BLEU(), "chrF2++": CHRF(word_order=2), "TER": TER()}


def make_significance(out, sets, system_files):
    result = {"confidence": [], "paired": []}
    conf_sets = [("multi30k", 1), ("multi30k", 2), ("edge", 2)]
    metrics = {
        "bleu": lambda: BLEU(),
        "bleu-floor-lc": lambda: BLEU(smooth_method="floor", lowercase=True),
        "chrf": lambda: CHRF(),
        "chrf++": lambda: CHRF(word_order=2),
        "chrf-eps": lambda: CHRF(eps_smoothing=True),
        "ter": lambda: TER(),
        "ter-norm": lambda: TER(normalized=True, case_sensitive=True),
    }
    for set_name, nrefs in conf_sets:
        hyp_file, ref_files = sets[set_name]
        hyps = read_stream(out, hyp_file)
        refs = [read_stream(out, f) for f in ref_files[:nrefs]]
        for key, make in metrics.items():
            for n, seed in ((1000, "12345"), (200, "7"), (57, "12345")):
                os.environ["SACREBLEU_SEED"] = seed
                metric = make()
                score = metric.corpus_score(hyps, refs, n_bootstrap=n)
                sig = str(metric.get_signature())
                result["confidence"].append({
                    "set": set_name, "nrefs": nrefs, "metric": key, "n": n, "seed": int(seed),
                    "score": score.score, "mean": float(score._mean), "ci": float(score._ci),
                    "signature": generic_sig(sig),
                    "text": generic_sig(score.format(width=2, signature=sig)),
                })
    os.environ["SACREBLEU_SEED"] = "12345"
    system_lines = [read_stream(out, f) for f in system_files]
    ref_lines = read_stream(out, "systems.ref.txt")
    named = [(f, lines) for f, lines in zip(system_files, system_lines)]
    for test_type, n in (("bs", 1000), ("ar", 10000), ("bs", 300)):
        ps = PairedTest(named, significance_metrics(), references=[ref_lines],
                        test_type=test_type, n_samples=n)
        sigs, scores = ps()
        rows = {name: [{"score": float(r.score),
                        "p_value": None if r.p_value is None else float(r.p_value),
                        "mean": None if r.mean is None else float(r.mean),
                        "ci": None if r.ci is None else float(r.ci)} for r in results]
                for name, results in scores.items() if name != "System"}
        result["paired"].append({
            "test": test_type, "n": n, "seed": 12345, "systems": scores["System"],
            "results": rows,
            "signatures": {k: generic_sig(v.format()) for k, v in sigs.items()},
        })
    return result


def make_cases(out, sets):
    cases = []
    for set_name, (hyp_file, ref_files) in sets.items():
        hyps = read_stream(out, hyp_file)
        all_refs = [read_stream(out, f) for f in ref_files]
        for nrefs in (1, 2):
            refs = all_refs[:nrefs]
            here = (set_name, nrefs, hyps, refs)
            tag = f"{set_name}/{nrefs}ref"
            for tok in ("13a", "intl", "char", "none"):
                for smooth, value in (("exp", None), ("floor", None), ("floor", 0.5),
                                      ("add-k", None), ("add-k", 2.0), ("none", None)):
                    for lc in (False, True):
                        if lc and (smooth != "exp" or set_name == "cjk"):
                            continue
                        if set_name == "readme" and (lc or (tok != "13a" and smooth != "exp")):
                            continue
                        if set_name == "multi30k" and (lc or value is not None):
                            continue
                        kw = dict(tokenize=tok, smooth_method=smooth, lowercase=lc)
                        if value is not None:
                            kw["smooth_value"] = value
                        cases.append(bleu_case(f"{tag}/bleu/{tok}/{smooth}/{value}/lc={lc}",
                                               *here, "corpus", **kw))
            sentence_settings = (("13a", "exp"), ("intl", "exp"), ("char", "exp"),
                                 ("none", "exp"), ("13a", "floor"), ("13a", "add-k"),
                                 ("13a", "none"))
            if set_name == "multi30k":
                sentence_settings = (("13a", "exp"),)
            for tok, smooth in sentence_settings:
                cases.append(bleu_case(f"{tag}/sentence-bleu/{tok}/{smooth}", *here,
                                       "sentence", tokenize=tok, smooth_method=smooth))
            for word_order in (0, 1, 2):
                for lc in (False, True):
                    kw = dict(word_order=word_order, lowercase=lc)
                    cases.append(chrf_case(f"{tag}/chrf/nw={word_order}/lc={lc}", *here,
                                           "corpus", **kw))
                if set_name != "multi30k" or word_order == 2:
                    cases.append(chrf_case(f"{tag}/sentence-chrf/nw={word_order}", *here,
                                           "sentence", word_order=word_order))
            for kw in (dict(beta=3, eps_smoothing=True), dict(whitespace=True),
                       dict(char_order=8, word_order=5, beta=1)):
                cases.append(chrf_case(f"{tag}/chrf/{sorted(kw.items())}", *here, "corpus",
                                       **kw))
    return cases


def make_tokenizer_fixture(out, sets):
    lines = []
    for set_name, (hyp_file, ref_files) in sets.items():
        for f in [hyp_file] + ref_files:
            stream = read_stream(out, f)
            lines.extend(stream[:8] if set_name == "multi30k" else stream)
    lines = sorted(set(lines))
    lines += ["-\nnew line", "a\nb", "x-\ny"]
    result = {"lines": lines}
    for tok in ("13a", "intl", "char", "zh"):  # "none" is the identity
        tokenizer = _get_tokenizer(tok)()
        result[tok] = [tokenizer(line) for line in lines]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multi30k", default=os.environ.get("MULTI30K_DIR", "data/multi30k"))
    parser.add_argument("--out", default=str(ROOT / "crates/rnnsearch-bleu/tests/fixtures"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = make_texts(out, args.multi30k)
    cases = make_cases(out, sets) + make_ter_and_zh_cases(out, sets)
    system_files = make_systems(out, args.multi30k)
    meta = {"generator": "scripts/make-bleu-fixtures.py", "sacrebleu": sacrebleu.__version__,
            "sets": {name: {"hyp": h, "refs": r} for name, (h, r) in sets.items()}}
    # One case (or tokenizer) per line: small files with readable diffs.
    with open(out / "expected.json", "w", encoding="utf-8") as fh:
        fh.write('{"meta": ' + json.dumps(meta) + ',\n"cases": [\n')
        fh.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":"))
                             for c in cases))
        fh.write("\n]}\n")
    with open(out / "tokenizers.json", "w", encoding="utf-8") as fh:
        toks = make_tokenizer_fixture(out, sets)
        fh.write("{\n")
        fh.write(",\n".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                             for k, v in toks.items()))
        fh.write("\n}\n")
    with open(out / "significance.json", "w", encoding="utf-8") as fh:
        sig = make_significance(out, sets, system_files)
        sig["meta"] = {"generator": "scripts/make-bleu-fixtures.py",
                       "sacrebleu": sacrebleu.__version__, "numpy": np.__version__,
                       "systems": system_files, "ref": "systems.ref.txt"}
        fh.write(json.dumps(sig, ensure_ascii=False, indent=0))
        fh.write("\n")
    (out / ".gitattributes").write_text("# Keep the fixture bytes (CRLF, odd whitespace) exact.\n* -text\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
