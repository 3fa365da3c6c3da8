"""How varied a set of instructions is: root verbs and their objects, distinct n-grams, compressibility.

The Self-Instruct paper (Figure 2) parses each instruction for its root verb and that verb's first
direct-object noun. A full parser is a heavy download, so for English this reads the verb and the
head of the noun phrase after it with small word lists: most instructions are imperatives
("Write a short poem about ...": write/poem). Chinese uses jieba's part-of-speech tags: the
first verb that is not a politeness word, and the last noun of the phrase it governs
("写一首关于春天的诗": 写/诗).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter

from selfinstruct.text.rouge import tokenize

# Verbs instructions start with; a first word outside this list is looked for a little further on.
EN_VERBS = set("""
add adjust analyze analyse answer apply arrange ask assess assign brainstorm build calculate categorize
categorise change check choose cite classify clean combine compare compile complete compose compute
condense construct convert correct count create critique decide decode define delete describe design
detect determine develop devise diagnose discuss draft draw edit elaborate eliminate encode enumerate
estimate evaluate explain express extract fill find fix format formulate generate give group guess
highlight identify illustrate imagine improve infer insert interpret introduce invent label list locate
make map match measure merge mention name note organize organise outline paraphrase parse pick plan
play predict prepare present produce propose provide put rank rate read recommend reformat remove
rename reorder rephrase replace report represent research respond restate reverse review revise rewrite
say schedule score search select separate shorten show simplify solve sort spell split state suggest
summarize summarise swap tag teach tell test transform translate turn update use verify write
""".split())
# Words that introduce the instruction rather than the task: "Please write ...", "Can you explain ...".
EN_LEAD = set("please kindly can could would will you now also then just i want need to help me".split())
# Words that end the object's noun phrase, or show there is none ("Explain why ...").
EN_PHRASE_END = set("""
about above across after against along among and as at because before behind below between but by
during for from how if in into like near of off on onto or over per since so than that the though
through to toward towards under until upon using via what when where whether which while who whom
whose why with within without
""".split()) - {"the"}
EN_SKIP = set("a an the this that these those some any each every one two three four five six seven eight ten "
              "me us him her them it its my our your their his".split())
EN_WORD = re.compile(r"[a-z][a-z'\-]*|[^\sa-z]")

ZH_POLITE = {"请", "帮", "帮忙", "帮助", "麻烦", "给", "让", "能", "能否", "可以", "可否", "要", "需要", "想",
             "希望", "试着", "尝试", "是"}
# Task verbs jieba may tag as nouns (总结 "summary"): counted as verbs wherever they stand.
ZH_VERBS = set("总结 概括 分析 描述 比较 解释 翻译 改写 列出 生成 设计 创作 编写 回答 判断 分类 推荐 评价 计算 提取 识别 "
               "整理 润色 扩写 缩写 续写 修改 纠正 规划 制定 撰写 写".split())
ZH_HEAD_WORDS = 10  # the governed phrase is looked for within this many words of the verb
ZH_FRAME = ("根据", "基于", "给定", "对于", "针对", "按照", "参考", "阅读")  # "根据以下描述，生成…": the task follows the comma
ZH_NOUN_FLAGS = ("n", "vn", "i", "l")  # nouns, verbal nouns, and set phrases such as 求职信


def verb_noun_en(instruction: str) -> tuple[str | None, str | None]:
    """(root verb, head noun of its object) of an English instruction; either may be None."""
    words = EN_WORD.findall(instruction.lower())
    clause = words
    if words and words[0] in ("given", "based", "using", "for", "in", "if", "after", "from", "with") and "," in words:
        clause = words[words.index(",") + 1:]  # "Given a list, find ..." : the task follows the comma
    verb_at = next((i for i, w in enumerate(clause[:6]) if w in EN_VERBS), None)
    if verb_at is None or any(w not in EN_LEAD for w in clause[:verb_at]):
        return None, None
    phrase = []
    for word in clause[verb_at + 1: verb_at + 8]:
        if word in EN_PHRASE_END or not word[0].isalpha():
            break
        if word not in EN_SKIP:
            phrase.append(word)
    return clause[verb_at], phrase[-1] if phrase else None


_JIEBA = None


def _posseg():
    global _JIEBA
    if _JIEBA is None:
        import jieba
        import jieba.posseg

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _JIEBA = jieba.posseg
    return _JIEBA


def verb_noun_zh(instruction: str) -> tuple[str | None, str | None]:
    """(first main verb, the last noun of the phrase it governs) of a Chinese instruction."""
    text = instruction[:60]
    if text.startswith(ZH_FRAME) and "，" in text:
        text = text.split("，", 1)[1]
    words = [(p.word, p.flag) for p in _posseg().lcut(text, HMM=False)]
    verb_at = next((i for i, (w, flag) in enumerate(words)
                    if (flag.startswith("v") or w in ZH_VERBS) and w not in ZH_POLITE), None)
    if verb_at is None:
        return None, None
    noun = None
    for word, flag in words[verb_at + 1: verb_at + 1 + ZH_HEAD_WORDS]:
        if flag in ("x", "w", "c") or word == "是" or not word.strip():  # punctuation, a conjunction or 是 ends it
            break
        if flag.startswith(ZH_NOUN_FLAGS):
            noun = word
    return words[verb_at][0], noun


def verb_noun_pairs(instructions: list[str], lang: str) -> list[tuple[str | None, str | None]]:
    parse = verb_noun_zh if lang == "zh" else verb_noun_en
    return [parse(text) for text in instructions]


def units(text: str, lang: str) -> list[str]:
    """What lengths and n-grams count: characters (no spaces) for Chinese, words for English."""
    if lang == "zh":
        return [c for c in text if not c.isspace()]
    return tokenize(text)


def distinct_n(texts: list[str], n: int, lang: str) -> float:
    """Distinct n-grams over all n-grams of the texts (Li et al. 2016): 1.0 means no n-gram repeats."""
    seen, total = set(), 0
    for text in texts:
        tokens = units(text, lang)
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def compression_ratio(texts: list[str]) -> float:
    """Size of the texts over their zlib-compressed size: repetitive data compresses more, so higher is less varied."""
    raw = "\n".join(texts).encode("utf-8")
    return len(raw) / len(zlib.compress(raw, 9)) if raw else 0.0


def top_pairs(pairs: list[tuple[str | None, str | None]], verbs: int = 20, nouns: int = 4) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """The most common verbs (with how often each is the root) and, for each, its most common nouns."""
    verb_counts = Counter(v for v, _ in pairs if v)
    noun_counts: dict[str, Counter] = {}
    for verb, noun in pairs:
        if verb and noun:
            noun_counts.setdefault(verb, Counter())[noun] += 1
    return [(verb, n, noun_counts.get(verb, Counter()).most_common(nouns)) for verb, n in verb_counts.most_common(verbs)]
