//! Every metric through the one [`Metric`] trait and through [`AnyMetric`]'s
//! rows: the typed scores and the scores of summed rows agree, and the
//! `float32` scores of the bootstrap stay close to the double ones.

use rnnsearch_bleu::report::Report;
use rnnsearch_bleu::{AnyMetric, Bleu, Chrf, ChrfOptions, Metric, Ter};

fn readme() -> (Vec<String>, Vec<Vec<String>>) {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let hyps = lines(&[
        "The dog bit the man.",
        "It wasn't surprising.",
        "The man had just bitten him.",
    ]);
    let refs = vec![
        lines(&[
            "The dog bit the man.",
            "It was not unexpected.",
            "The man bit him first.",
        ]),
        lines(&[
            "The dog had bit the man.",
            "No one was surprised.",
            "The man had bitten the dog.",
        ]),
    ];
    (hyps, refs)
}

/// The typed corpus score and the score of summed rows agree exactly,
/// and a sentence score is the corpus score of one segment.
fn check<M: Metric + Send + 'static>(make: impl Fn() -> M) {
    let (hyps, refs) = readme();
    let mut typed = make();
    let corpus: Report = typed.corpus_score(&hyps, &refs).unwrap().into();
    let mut any = AnyMetric::new(make());
    let rows = any.stat_rows(&hyps, &refs).unwrap();
    assert_eq!(rows.len(), hyps.len());
    assert_eq!(any.score(&rows.sum(), refs.len()), corpus);
    assert_eq!(any.score_value(&rows.sum()), corpus.score);
    assert_eq!(any.name(), corpus.name);
    assert_eq!(any.signature(refs.len()), corpus.signature);
    let seg_refs = [refs[0][1].as_str(), refs[1][1].as_str()];
    let sentence: Report = typed.sentence_score(&hyps[1], &seg_refs).unwrap().into();
    let one: Report = typed
        .corpus_score(&hyps[1..2], &[&refs[0][1..2], &refs[1][1..2]])
        .unwrap()
        .into();
    assert_eq!(sentence, one);
    let none: [&str; 0] = [];
    assert!(typed.sentence_score("a", &none).is_err());
}

#[test]
fn typed_and_row_scores_agree() {
    check(Bleu::default);
    check(Chrf::default);
    check(|| Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap());
    check(Ter::default);
}

#[test]
fn f32_and_f64_paths_agree_closely() {
    let hyps = vec!["the cat sat on the mat".to_string(), "a dog".to_string()];
    let refs = vec![vec![
        "the cat sat on a mat".to_string(),
        "the dog barked".to_string(),
    ]];
    let mut metrics = [
        AnyMetric::new(Bleu::default()),
        AnyMetric::new(Chrf::new(ChrfOptions::chrf_plus_plus()).unwrap()),
        AnyMetric::new(Ter::default()),
    ];
    for m in &mut metrics {
        let rows = m.stat_rows(&hyps, &refs).unwrap();
        assert_eq!(rows.len(), 2);
        let sums = rows.sum();
        let mut single: Vec<f32> = sums.iter().map(|&x| x as f32).collect();
        let exact = m.score_value(&sums);
        let approx = m.score_f32(&mut single).value();
        assert!(
            (exact - approx).abs() < 1e-4,
            "{}: {exact} {approx}",
            m.name()
        );
    }
}
