//! The model contract: what `write` produces, tract runs exactly as the network is defined, and
//! `load` refuses anything that is not a Continuo model with a reason a musician can act on.

use continuo_engine::harmony::{Harmony, HarmonyInput};
use continuo_engine::model::{self, Model, ModelInfo, ModelShape, ModelWeights, TrainingSummary};
use continuo_engine::sampler::Tuning;
use continuo_engine::vocab::VocabSpec;
use ndarray::{s, Array1, ArrayView1, ArrayView2};
use prost::Message;
use tract_onnx::pb;

const SHAPE: ModelShape =
    ModelShape { layers: 2, hidden: 32, embed: 16, dense: 24, vocab: 384, harmony: None };

fn info() -> ModelInfo {
    let mut info = ModelInfo::new("parity test", SHAPE);
    info.training = TrainingSummary {
        dataset: "random weights".into(),
        steps: 7,
        validation_loss: Some(2.5),
        ..Default::default()
    };
    info
}

/// The network as the contract defines it, written out with ndarray: the reference tract must match.
struct Reference {
    shape: ModelShape,
    weights: ModelWeights,
    h: Vec<Array1<f32>>,
    c: Vec<Array1<f32>>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn view(values: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), values).unwrap()
}

impl Reference {
    fn new(shape: ModelShape, weights: ModelWeights) -> Reference {
        let zeros = vec![Array1::zeros(shape.hidden); shape.layers];
        Reference { shape, weights, h: zeros.clone(), c: zeros }
    }

    fn step(&mut self, token: usize) -> Array1<f32> {
        self.step_in(token, &[])
    }

    /// A step whose first layer reads the token's embedding followed by the harmony's numbers
    /// (version 2's Concat).
    fn step_in(&mut self, token: usize, harmony: &[f32]) -> Array1<f32> {
        let ModelShape { hidden: h, embed: e, dense: d, vocab: v, .. } = self.shape;
        let embedded = view(&self.weights.embedding, v, e).row(token).to_owned();
        let mut x: Array1<f32> = embedded.iter().chain(harmony).copied().collect();
        for (l, layer) in self.weights.lstm.iter().enumerate() {
            let input = self.shape.lstm_input(l);
            let w = view(&layer.w, 4 * h, input);
            let r = view(&layer.r, 4 * h, h);
            let b = ArrayView1::from(&layer.b);
            // ONNX: gates = X W^T + H R^T + Wb + Rb, blocks in the order i, o, f, c.
            let gates = w.dot(&x) + r.dot(&self.h[l]) + b.slice(s![..4 * h]) + b.slice(s![4 * h..]);
            let block = |k: usize| gates.slice(s![k * h..(k + 1) * h]).to_owned();
            let (i, o, f, g) = (block(0), block(1), block(2), block(3));
            let c = f.mapv(sigmoid) * &self.c[l] + i.mapv(sigmoid) * g.mapv(f32::tanh);
            let h_new = o.mapv(sigmoid) * c.mapv(f32::tanh);
            self.c[l] = c;
            self.h[l] = h_new.clone();
            x = h_new;
        }
        let dense = (view(&self.weights.dense_w, d, h).dot(&x) + ArrayView1::from(&self.weights.dense_b))
            .mapv(|z| z.max(0.0));
        view(&self.weights.out_w, v, d).dot(&dense) + ArrayView1::from(&self.weights.out_b)
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn tract_matches_the_reference_forward_pass_over_64_steps() {
    let weights = ModelWeights::random(&SHAPE, 2024, 0.3);
    let bytes = model::write(&weights, &info()).unwrap();
    let mut model = Model::load(&bytes, "parity.onnx").unwrap();
    let mut reference = Reference::new(SHAPE, weights);

    let mut state = model.initial_state();
    let mut logits = vec![0.0; SHAPE.vocab];
    let mut worst = 0.0f32;
    for step in 0..64 {
        let token = (step * 37 + 11) % SHAPE.vocab;
        model.step(token as u32, &mut state, &mut logits).unwrap();
        let expected = reference.step(token);
        worst = worst.max(max_abs_diff(&logits, expected.as_slice().unwrap()));
        let h_ref: Vec<f32> = reference.h.iter().flatten().copied().collect();
        let c_ref: Vec<f32> = reference.c.iter().flatten().copied().collect();
        worst = worst.max(max_abs_diff(state.h(), &h_ref)).max(max_abs_diff(state.c(), &c_ref));
    }
    assert!(worst < 1e-4, "tract differs from the reference by {worst}");
    // The state carried: logits after 64 steps are not those of a fresh start.
    let mut fresh = model.initial_state();
    let mut fresh_logits = vec![0.0; SHAPE.vocab];
    model.step(((63 * 37 + 11) % SHAPE.vocab) as u32, &mut fresh, &mut fresh_logits).unwrap();
    assert!(max_abs_diff(&logits, &fresh_logits) > 1e-3);
}

#[test]
fn metadata_round_trips() {
    let bytes = model::write(&ModelWeights::random(&SHAPE, 1, 0.1), &info()).unwrap();
    let model = Model::load(&bytes, "meta.onnx").unwrap();
    assert_eq!(model.info(), &info());
    assert_eq!(model.info().vocab, VocabSpec::v1());
}

#[test]
fn a_tuning_is_written_read_and_replaced_without_touching_the_network() {
    let weights = ModelWeights::random(&SHAPE, 1, 0.1);
    let untuned = model::write(&weights, &info()).unwrap();
    let model = Model::load(&untuned, "untuned.onnx").unwrap();
    assert_eq!(model.info().tuning, None);
    assert_eq!(model.info().played_tuning(), Tuning::UNTUNED);

    let tuning = Tuning { temperature: 0.9, rhythm_temperature: 1.0, top_p: 0.95, voices: Some(2) };
    let tuned = model::retune(&untuned, &tuning).unwrap();
    let mut model = Model::load(&tuned, "tuned.onnx").unwrap();
    assert_eq!(model.info().tuning, Some(tuning));
    assert_eq!(model.info().played_tuning(), tuning);
    // Tuned again, the new tuning replaces the old, and the network is the one written.
    let cooler = Tuning { temperature: 0.5, voices: None, ..tuning };
    let retuned = model::retune(&tuned, &cooler).unwrap();
    assert_eq!(Model::load(&retuned, "retuned.onnx").unwrap().info().tuning, Some(cooler));
    let mut written =
        Model::load(&model::write(&weights, &ModelInfo { tuning: Some(cooler), ..info() }).unwrap(), "w")
            .unwrap();
    let (mut a, mut b) = (model.initial_state(), written.initial_state());
    let (mut la, mut lb) = (vec![0.0; SHAPE.vocab], vec![0.0; SHAPE.vocab]);
    for token in [3, 300, 260] {
        model.step(token, &mut a, &mut la).unwrap();
        written.step(token, &mut b, &mut lb).unwrap();
        assert_eq!(la, lb);
    }
}

#[test]
fn a_tuning_that_cannot_be_played_is_refused() {
    let bytes = model::write(&ModelWeights::random(&SHAPE, 1, 0.1), &info()).unwrap();
    let err = model::retune(&bytes, &Tuning { top_p: 0.0, ..Tuning::UNTUNED }).unwrap_err();
    assert!(err.contains("top-p 0"), "{err}");
    assert!(model::retune(b"MThd", &Tuning::UNTUNED).is_err());
    let mut proto = valid_proto();
    proto.metadata_props.push(pb::StringStringEntryProto {
        key: "continuo.tuning".into(),
        value: r#"{"temperature":-1,"rhythm_temperature":1,"top_p":0.9}"#.into(),
    });
    let err = refusal(&proto.encode_to_vec());
    assert!(err.contains("'continuo.tuning' cannot be played: its temperature -1"), "{err}");
}

#[test]
fn a_single_layer_model_works_too() {
    let shape = ModelShape { layers: 1, ..SHAPE };
    let weights = ModelWeights::random(&shape, 5, 0.3);
    let bytes = model::write(&weights, &ModelInfo::new("one layer", shape)).unwrap();
    let mut model = Model::load(&bytes, "one.onnx").unwrap();
    let mut reference = Reference::new(shape, weights);
    let (mut state, mut logits) = (model.initial_state(), vec![0.0; shape.vocab]);
    for token in [3, 300, 260, 131] {
        model.step(token, &mut state, &mut logits).unwrap();
        assert!(max_abs_diff(&logits, reference.step(token as usize).as_slice().unwrap()) < 1e-4);
    }
}

#[test]
fn write_refuses_weights_of_the_wrong_size() {
    let mut weights = ModelWeights::random(&SHAPE, 1, 0.1);
    weights.lstm[1].r.pop();
    let err = model::write(&weights, &info()).unwrap_err().to_string();
    assert!(err.contains("LSTM layer 1 R has 4095 values"), "{err}");
}

// --- Refusals ---------------------------------------------------------------------------

fn refusal(bytes: &[u8]) -> String {
    let err = Model::load(bytes, "my-model.onnx").unwrap_err().to_string();
    assert!(err.starts_with("my-model.onnx: "), "the error does not name the file: {err}");
    err
}

fn valid_proto() -> pb::ModelProto {
    let bytes = model::write(&ModelWeights::random(&SHAPE, 3, 0.1), &info()).unwrap();
    pb::ModelProto::decode(bytes.as_slice()).unwrap()
}

fn set_meta(proto: &mut pb::ModelProto, key: &str, value: &str) {
    proto.metadata_props.iter_mut().find(|p| p.key == key).unwrap().value = value.to_string();
}

#[test]
fn not_onnx_is_refused() {
    assert!(refusal(b"").contains("empty"));
    assert!(refusal(b"MThd\0\0\0\x06 this is a MIDI file").contains("not an ONNX file"));
    let err = Model::load_file(std::path::Path::new("/nowhere/model.onnx")).unwrap_err().to_string();
    assert!(err.starts_with("/nowhere/model.onnx: cannot read the file"), "{err}");
}

#[test]
fn foreign_onnx_without_our_metadata_is_refused() {
    let mut proto = valid_proto();
    proto.metadata_props.clear();
    proto.producer_name = "pytorch".into();
    let err = refusal(&proto.encode_to_vec());
    assert!(err.contains("not a Continuo model (made by pytorch"), "{err}");
    assert!(err.contains("continuo-train export"), "{err}");
}

#[test]
fn a_model_that_follows_the_harmony_reads_it_as_the_reference_does_and_version_1_is_unchanged() {
    for input in [HarmonyInput::PitchClasses, HarmonyInput::PitchClassesAndMeter] {
        let shape = ModelShape { harmony: Some(input), ..SHAPE };
        let weights = ModelWeights::random(&shape, 77, 0.3);
        let bytes = model::write(&weights, &ModelInfo::new("follows", shape)).unwrap();
        let mut model = Model::load(&bytes, "follows.onnx").unwrap();
        assert!(model.follows_harmony());
        assert_eq!(model.info().shape.harmony, Some(input));
        let mut reference = Reference::new(shape, weights);
        let (mut state, mut logits, mut numbers) =
            (model.initial_state(), vec![0.0; shape.vocab], vec![0.0; input.width()]);
        let mut worst = 0.0f32;
        for step in 0..32 {
            let token = (step * 53 + 7) % shape.vocab;
            let harmony = Harmony::of_pitches([48 + step as u8 % 12, 55 + step as u8 % 12, 64]);
            let clock = step as u64 * 5;
            model.step_in(token as u32, harmony, clock, &mut state, &mut logits).unwrap();
            input.write(harmony, clock, &mut numbers);
            worst = worst.max(max_abs_diff(&logits, reference.step_in(token, &numbers).as_slice().unwrap()));
        }
        assert!(worst < 1e-4, "{input:?}: tract differs from the reference by {worst}");
        // The harmony matters: the same token in another harmony gives other logits; and to a
        // model that hears the meter, so does the same harmony elsewhere in the bar.
        let mut logits_after = |harmony: Harmony, clock: u64| {
            let (mut state, mut out) = (model.initial_state(), logits.clone());
            model.step_in(5, harmony, clock, &mut state, &mut out).unwrap();
            out
        };
        let (c, c_sharp) = (Harmony::of_pitches([60, 64, 67]), Harmony::of_pitches([61, 65, 68]));
        assert!(max_abs_diff(&logits_after(c, 0), &logits_after(c_sharp, 0)) > 1e-3);
        let elsewhere = max_abs_diff(&logits_after(c, 0), &logits_after(c, 30));
        assert_eq!(elsewhere > 1e-3, input.hears_the_meter(), "{input:?}: {elsewhere}");
    }
    let shape = ModelShape { harmony: Some(HarmonyInput::PitchClasses), ..SHAPE };
    let weights = ModelWeights::random(&shape, 77, 0.3);
    let bytes = model::write(&weights, &ModelInfo::new("follows", shape)).unwrap();
    // Written as version 2; a model without the input is still version 1.
    let version = |bytes: &[u8]| {
        let proto = pb::ModelProto::decode(bytes).unwrap();
        proto.metadata_props.iter().find(|p| p.key == "continuo.format_version").unwrap().value.clone()
    };
    assert_eq!(version(&bytes), "2");
    assert_eq!(version(&model::write(&ModelWeights::random(&SHAPE, 1, 0.1), &info()).unwrap()), "1");
    // A version 2 file that does not say how it reads the harmony is refused.
    let mut proto = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    proto.metadata_props.retain(|p| p.key != "continuo.harmony");
    assert!(refusal(&proto.encode_to_vec()).contains("lacks its 'continuo.harmony'"));
}

#[test]
fn other_contract_versions_are_refused_with_which_is_newer() {
    let mut proto = valid_proto();
    set_meta(&mut proto, "continuo.format_version", "3");
    assert!(refusal(&proto.encode_to_vec()).contains("made by a newer Continuo"));
    set_meta(&mut proto, "continuo.format_version", "0");
    assert!(refusal(&proto.encode_to_vec()).contains("made by an older Continuo"));
}

#[test]
fn an_unknown_vocabulary_is_refused() {
    let mut proto = valid_proto();
    let mut spec = VocabSpec::v1();
    spec.version = 9;
    set_meta(&mut proto, "continuo.vocab", &spec.to_json());
    let err = refusal(&proto.encode_to_vec());
    assert!(err.contains("vocabulary version 9 is not supported"), "{err}");
}

#[test]
fn a_graph_that_disagrees_with_its_metadata_is_refused() {
    let mut proto = valid_proto();
    set_meta(&mut proto, "continuo.hidden_size", "64");
    let err = refusal(&proto.encode_to_vec());
    assert!(
        err.contains("input 'h' is Float [2, 1, 32]; the metadata says it should be Float [2, 1, 64]"),
        "{err}"
    );

    let mut renamed = valid_proto();
    renamed.graph.as_mut().unwrap().input[0].name = "input_ids".into();
    let err = refusal(&renamed.encode_to_vec());
    assert!(err.contains(r#"its inputs are ["input_ids", "h", "c"]"#), "{err}");
}

#[test]
fn a_graph_that_does_not_run_is_refused() {
    let mut proto = valid_proto();
    let graph = proto.graph.as_mut().unwrap();
    graph.node.retain(|n| n.op_type != "Relu");
    let err = refusal(&proto.encode_to_vec());
    assert!(err.contains("the graph does not run"), "{err}");
}
