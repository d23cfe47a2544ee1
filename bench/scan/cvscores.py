#!/usr/bin/env python3
"""bench/scan/cvscores.py - decision rules and combinations on out-of-fold scores.

Reads the file `scantool train DIR OUT --cv-repeat 4 --cv-scores FILE` writes
(one line per training message and partition: "<partition> <label 0 ham,
1 spam, 2 phishing> <P(ham)> <P(spam)> <P(phishing)> <path>") and prints, over
all partitions together, without retraining and without the test part:

  - the threshold the trainer would choose (0.01 steps, at most 0.9) for
    several out-of-fold ham false-positive budgets, with the errors there;
  - the best pair of separate cuts (ham against spam, ham against phishing)
    at the 0.3% budget;
  - with --nb FILE (the same output of `--algo nb`): the logistic
    regression's ham log-odds plus w times naive Bayes', for several w, at
    the 0.3% budget.

    bench/scan/cvscores.py LR.scores [--nb NB.scores]
"""
import argparse
import math

TINY = 1e-300


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            rep, label, p0, p1, p2, name = line.rstrip("\n").split(" ", 5)
            rows[(int(rep), name)] = (int(label), float(p0), float(p1), float(p2))
    return rows


def log_odds(p0, p1, p2):
    """log P(ham) / P(junk)"""
    return math.log(max(p0, TINY)) - math.log(max(p1 + p2, TINY))


def at_budget(scored, budget):
    """scored: (label, ham log-odds). Junk when below the cut that lets
    through at most BUDGET of the ham; returns ham FP, spam missed, phishing
    missed."""
    hams = sorted(s for label, s in scored if label == 0)
    allow = int(budget * len(hams))
    cut = hams[allow] if allow < len(hams) else float("inf")
    fp = sum(1 for s in hams if s < cut)
    fn = sum(1 for label, s in scored if label == 1 and s >= cut)
    ph = sum(1 for label, s in scored if label == 2 and s >= cut)
    return fp, fn, ph


def threshold_table(rows):
    vals = list(rows.values())
    hams = [v for v in vals if v[0] == 0]
    print("budget  threshold  ham FP  spam missed  phishing missed  errors (ham FP + spam missed)")
    for budget in (0.002, 0.003, 0.004, 0.005):
        for step in range(90, 0, -1):
            t = step / 100
            fp = sum(1 for v in hams if v[1] < t)
            if fp <= budget * len(hams):
                break
        fn = sum(1 for v in vals if v[0] == 1 and v[1] >= t)
        ph = sum(1 for v in vals if v[0] == 2 and v[1] >= t)
        print(f"{100 * budget:5.1f}%  {t:9.2f}  {fp:6d}  {fn:11d}  {ph:15d}  {fp + fn:6d}")


def two_cuts(rows, budget=0.003):
    vals = list(rows.values())
    pairs = [(v[0], math.log(max(v[1], TINY)) - math.log(max(v[2], TINY)),
              math.log(max(v[1], TINY)) - math.log(max(v[3], TINY))) for v in vals]
    hams = [p for p in pairs if p[0] == 0]
    allow = int(budget * len(hams))
    best = None
    for c2 in [x / 4 for x in range(-60, 20)]:
        by_phish = [h for h in hams if h[2] < c2]
        if len(by_phish) > allow:
            continue
        rest = sorted(h[1] for h in hams if h[2] >= c2)
        c1 = rest[allow - len(by_phish)]
        junk = [p[1] < c1 or p[2] < c2 for p in pairs]
        fp = sum(1 for p, j in zip(pairs, junk) if p[0] == 0 and j)
        fn = sum(1 for p, j in zip(pairs, junk) if p[0] == 1 and not j)
        ph = sum(1 for p, j in zip(pairs, junk) if p[0] == 2 and not j)
        if best is None or (fn + ph, fn) < (best[1] + best[2], best[1]):
            best = (fp, fn, ph, c1, c2)
    print("separate cuts (best at %.1f%%): ham FP %d, spam missed %d, phishing missed %d "
          "(log P(ham)/P(spam) < %.2f or log P(ham)/P(phishing) < %.2f)"
          % ((100 * budget,) + best))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scores")
    ap.add_argument("--nb")
    a = ap.parse_args()
    lr = load(a.scores)
    threshold_table(lr)
    two_cuts(lr)
    fp, fn, ph = at_budget([(v[0], log_odds(*v[1:])) for v in lr.values()], 0.003)
    print(f"one cut at 0.3%: ham FP {fp}, spam missed {fn}, phishing missed {ph}")
    if a.nb:
        nb = load(a.nb)
        keys = [k for k in lr if k in nb]
        print("lr + w * nb (ham log-odds) at 0.3%:")
        for w in (0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.5):
            scored = [(lr[k][0], log_odds(*lr[k][1:]) + w * log_odds(*nb[k][1:])) for k in keys]
            fp, fn, ph = at_budget(scored, 0.003)
            print(f"  w {w:<6} ham FP {fp}, spam missed {fn}, phishing missed {ph}")


if __name__ == "__main__":
    main()
