//! The model contract: the single-step ONNX graph that the trainer writes and the plugin runs.
//!
//! Owns both directions, so the graph is described once: [`write`] builds ONNX bytes from plain
//! weight arrays and a [`ModelInfo`], and [`Model::load`] reads bytes or a file with tract, checks
//! the contract (metadata, vocabulary, names, shapes) and returns a runnable model whose
//! [`Model::step`] turns one token and the recurrent state into next-token logits.
//!
//! The graph is one step, not a sequence: the caller owns `h`/`c`, so tract can inline and fuse
//! the LSTM cell, and `initial_h`/`initial_c` are honoured on every call.
//!
//! ```text
//! token i64[1] -> Gather(embedding[V,E]) -> Reshape[1,1,E]
//!   (v2, a model that follows the harmony: Concat with harmony f32[1,K] -> Reshape[1,1,E+K])
//!   -> LSTM_0 .. LSTM_{L-1}  (seq_len 1; initial_h/c sliced from h,c [L,1,H]; ONNX gates i,o,f,c)
//!   -> Reshape[1,H] -> Gemm(W1[D,H]) -> Relu -> Gemm(W2[V,D]) -> logits f32[1,V]
//! h_out, c_out f32[L,1,H] = Concat of every layer's Y_h, Y_c
//! ```

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use serde::{Deserialize, Serialize};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::harmony::{Harmony, HarmonyInput};
use crate::midi::Role;
use crate::realtime_memory::{self, StepPool};
use crate::sampler::Tuning;
use crate::vocab::VocabSpec;

/// Version of this contract: 2 added the harmony input. A model that hears no harmony is still
/// written as version 1 (its graph is the one version 1 describes), so every build since
/// version 1 plays it; a version this build does not know is refused, with a message saying
/// whether it is older or newer than this build.
pub const FORMAT_VERSION: u32 = 2;
/// The first version with a `harmony` input.
pub const FIRST_HARMONY_VERSION: u32 = 2;
/// ONNX opset the graph is written for (tract is tested on 9..=18).
pub const OPSET: i64 = 17;

const KEY_FORMAT: &str = "continuo.format_version";
const KEY_NAME: &str = "continuo.name";
const KEY_ROLE: &str = "continuo.role";
const KEY_VOCAB: &str = "continuo.vocab";
const KEY_LAYERS: &str = "continuo.layers";
const KEY_HIDDEN: &str = "continuo.hidden_size";
const KEY_EMBED: &str = "continuo.embedding_size";
const KEY_DENSE: &str = "continuo.dense_size";
const KEY_TRAINING: &str = "continuo.training";
/// Version 2: how the model reads the harmony ([`HarmonyInput::id`]).
const KEY_HARMONY: &str = "continuo.harmony";
/// Optional: how the model plays best ([`Tuning`], JSON). Written by `continuo-train tune`; a
/// model without it plays [`Tuning::UNTUNED`], so it needs no new contract version.
const KEY_TUNING: &str = "continuo.tuning";

/// Sizes of the network: embedding E (beside the harmony's K numbers, when the model hears
/// one) -> L LSTM layers of H -> dense D + ReLU -> V logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    pub layers: usize,
    pub hidden: usize,
    pub embed: usize,
    pub dense: usize,
    pub vocab: usize,
    /// How the model hears the harmony of the other parts; None: it hears none (version 1).
    #[serde(default)]
    pub harmony: Option<HarmonyInput>,
}

impl ModelShape {
    /// Weights in the network.
    pub fn parameter_count(&self) -> usize {
        let ModelShape { layers, hidden: h, embed: e, dense: d, vocab: v, .. } = *self;
        let lstm: usize = (0..layers).map(|l| 4 * h * self.lstm_input(l) + 4 * h * h + 8 * h).sum();
        v * e + lstm + d * h + d + v * d + v
    }

    /// Input width of LSTM layer `layer`: the first reads the token's embedding and the harmony.
    pub fn lstm_input(&self, layer: usize) -> usize {
        if layer == 0 {
            self.embed + self.harmony_width()
        } else {
            self.hidden
        }
    }

    /// How many numbers the harmony input holds (0 for a model that hears none).
    pub fn harmony_width(&self) -> usize {
        self.harmony.map_or(0, HarmonyInput::width)
    }

    /// The contract version a model of this shape is written as.
    pub fn format_version(&self) -> u32 {
        if self.harmony.is_some() {
            FIRST_HARMONY_VERSION
        } else {
            1
        }
    }
}

/// What the trainer knows about how a model was made; shown to the musician, never interpreted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSummary {
    /// What it learned from, in words ("408 Bach chorales").
    pub dataset: String,
    pub files: u64,
    pub tokens: u64,
    pub steps: u64,
    pub train_loss: Option<f32>,
    pub validation_loss: Option<f32>,
    /// When it was exported, RFC 3339.
    pub exported_at: String,
    /// The command that trained it.
    pub command: String,
    /// How many notes its training music sounds at once (at nine in ten of its onsets): the voices it
    /// plays when the musician leaves Polyphony "as trained". None for models that do not say.
    #[serde(default)]
    pub voices: Option<u8>,
    /// The token its training songs start with most often: the first the model reads (see
    /// `generator::start_token`). None for models exported before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_token: Option<u16>,
}

/// Everything a model file says about itself, read from and written to `metadata_props`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub role: Role,
    pub vocab: VocabSpec,
    pub shape: ModelShape,
    pub training: TrainingSummary,
    /// How it plays best; None when its file does not say.
    pub tuning: Option<Tuning>,
}

/// One LSTM layer in ONNX's layout: gate blocks in the order i, o, f, c.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmWeights {
    /// `W`, [4H, input] row-major.
    pub w: Vec<f32>,
    /// `R`, [4H, H] row-major.
    pub r: Vec<f32>,
    /// `B`, [8H]: input bias then recurrent bias (Wb, Rb).
    pub b: Vec<f32>,
}

/// All weights of the network, as plain row-major arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelWeights {
    /// [V, E]
    pub embedding: Vec<f32>,
    pub lstm: Vec<LstmWeights>,
    /// [D, H] and [D]
    pub dense_w: Vec<f32>,
    pub dense_b: Vec<f32>,
    /// [V, D] and [V]
    pub out_w: Vec<f32>,
    pub out_b: Vec<f32>,
}

impl ModelInfo {
    /// A melodic model of vocabulary v1 with nothing yet known about its training.
    pub fn new(name: &str, shape: ModelShape) -> ModelInfo {
        ModelInfo {
            name: name.to_string(),
            role: Role::Melodic,
            vocab: VocabSpec::v1(),
            shape,
            training: TrainingSummary::default(),
            tuning: None,
        }
    }

    /// The tuning it plays by when the musician names none: its own, or [`Tuning::UNTUNED`].
    pub fn played_tuning(&self) -> Tuning {
        self.tuning.unwrap_or(Tuning::UNTUNED)
    }

    /// It hears where the clock stands in the bar beside the harmony (a groove model): its
    /// music counts bars from its first step.
    pub fn hears_the_meter(&self) -> bool {
        self.shape.harmony.is_some_and(|input| input.hears_the_meter())
    }
}

/// The model file `bytes` with `tuning` in its metadata in place of any it had: the network and
/// everything else it says are untouched. Refuses what is not a model of this contract, or a
/// tuning the sampler could not play by.
pub fn retune(bytes: &[u8], tuning: &Tuning) -> Result<Vec<u8>, String> {
    tuning.check().map_err(|e| format!("the tuning cannot be played: {e}"))?;
    let mut proto = pb::ModelProto::decode(bytes).map_err(|_| "this is not an ONNX file".to_string())?;
    read_info(&proto)?;
    proto.metadata_props.retain(|p| p.key != KEY_TUNING);
    proto
        .metadata_props
        .push(pb::StringStringEntryProto { key: KEY_TUNING.into(), value: tuning_json(tuning) });
    Ok(proto.encode_to_vec())
}

fn tuning_json(tuning: &Tuning) -> String {
    serde_json::to_string(tuning).expect("a tuning serialises")
}

impl ModelWeights {
    /// Weights drawn uniformly from [-scale, scale] with a seed: for tests and benchmarks that
    /// need a real graph of a given size, never for a shipped model.
    pub fn random(shape: &ModelShape, seed: u64, scale: f32) -> ModelWeights {
        let mut rng = crate::sampler::Rng::new(seed);
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n).map(|_| ((rng.next_f64() * 2.0 - 1.0) as f32) * scale).collect()
        };
        let h = shape.hidden;
        ModelWeights {
            embedding: draw(shape.vocab * shape.embed),
            lstm: (0..shape.layers)
                .map(|l| LstmWeights {
                    w: draw(4 * h * shape.lstm_input(l)),
                    r: draw(4 * h * h),
                    b: draw(8 * h),
                })
                .collect(),
            dense_w: draw(shape.dense * h),
            dense_b: draw(shape.dense),
            out_w: draw(shape.vocab * shape.dense),
            out_b: draw(shape.vocab),
        }
    }
}

/// A model that cannot be written or loaded, and why, in words a musician can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem}")]
pub struct ModelError {
    /// The file, or what the bytes came from.
    pub origin: String,
    pub problem: String,
}

impl ModelError {
    fn new(origin: &str, problem: impl Into<String>) -> ModelError {
        ModelError { origin: origin.to_string(), problem: problem.into() }
    }
}

/// Writes the single-step graph with its metadata as ONNX bytes.
pub fn write(weights: &ModelWeights, info: &ModelInfo) -> Result<Vec<u8>, ModelError> {
    let s = info.shape;
    let fail = |what: &str, got: usize, want: usize| {
        ModelError::new(&info.name, format!("{what} has {got} values, but a {s:?} network needs {want}"))
    };
    let check = |what: &str, values: &[f32], want: usize| {
        if values.len() == want {
            Ok(())
        } else {
            Err(fail(what, values.len(), want))
        }
    };
    if s.layers == 0 || s.hidden == 0 || s.embed == 0 || s.dense == 0 {
        return Err(ModelError::new(&info.name, format!("every size must be at least 1: {s:?}")));
    }
    if s.vocab != info.vocab.size as usize {
        return Err(ModelError::new(
            &info.name,
            format!("the network has {} outputs but the vocabulary has {} tokens", s.vocab, info.vocab.size),
        ));
    }
    check("embedding", &weights.embedding, s.vocab * s.embed)?;
    if weights.lstm.len() != s.layers {
        return Err(fail("the LSTM stack", weights.lstm.len(), s.layers));
    }
    for (l, layer) in weights.lstm.iter().enumerate() {
        check(&format!("LSTM layer {l} W"), &layer.w, 4 * s.hidden * s.lstm_input(l))?;
        check(&format!("LSTM layer {l} R"), &layer.r, 4 * s.hidden * s.hidden)?;
        check(&format!("LSTM layer {l} B"), &layer.b, 8 * s.hidden)?;
    }
    check("dense weight", &weights.dense_w, s.dense * s.hidden)?;
    check("dense bias", &weights.dense_b, s.dense)?;
    check("output weight", &weights.out_w, s.vocab * s.dense)?;
    check("output bias", &weights.out_b, s.vocab)?;

    let (l, h, e, d, v) = (s.layers as i64, s.hidden as i64, s.embed as i64, s.dense as i64, s.vocab as i64);
    let mut g = GraphBuilder::default();
    g.floats("embedding", &[v, e], &weights.embedding);
    g.ints("shape_1_1_e", &[3], &[1, 1, e]);
    g.ints("shape_1_1_h", &[3], &[1, 1, h]);
    g.ints("shape_1_h", &[2], &[1, h]);
    g.ints("axis_0", &[1], &[0]);
    g.node("Gather", &["embedding", "token"], &["embedded"], vec![attr_int("axis", 0)]);
    if let Some(input) = s.harmony {
        // The harmony joins the token's embedding as the first layer's input [1, E + K].
        g.ints("shape_1_1_ek", &[3], &[1, 1, e + input.width() as i64]);
        g.node("Concat", &["embedded", "harmony"], &["embedded_in_harmony"], vec![attr_int("axis", 1)]);
        g.node("Reshape", &["embedded_in_harmony", "shape_1_1_ek"], &["x_0"], vec![]);
    } else {
        g.node("Reshape", &["embedded", "shape_1_1_e"], &["x_0"], vec![]);
    }
    let mut last_h = String::new();
    for (i, layer) in weights.lstm.iter().enumerate() {
        let input = s.lstm_input(i) as i64;
        g.floats(&format!("lstm_{i}_w"), &[1, 4 * h, input], &layer.w);
        g.floats(&format!("lstm_{i}_r"), &[1, 4 * h, h], &layer.r);
        g.floats(&format!("lstm_{i}_b"), &[1, 8 * h], &layer.b);
        g.ints(&format!("start_{i}"), &[1], &[i as i64]);
        g.ints(&format!("end_{i}"), &[1], &[i as i64 + 1]);
        for state in ["h", "c"] {
            g.node(
                "Slice",
                &[state, &format!("start_{i}"), &format!("end_{i}"), "axis_0"],
                &[&format!("{state}_in_{i}")],
                vec![],
            );
        }
        g.node(
            "LSTM",
            &[
                &format!("x_{i}"),
                &format!("lstm_{i}_w"),
                &format!("lstm_{i}_r"),
                &format!("lstm_{i}_b"),
                "",
                &format!("h_in_{i}"),
                &format!("c_in_{i}"),
            ],
            &[&format!("y_{i}"), &format!("h_out_{i}"), &format!("c_out_{i}")],
            vec![attr_int("hidden_size", h)],
        );
        g.node("Reshape", &[&format!("y_{i}"), "shape_1_1_h"], &[&format!("x_{}", i + 1)], vec![]);
        last_h = format!("y_{i}");
    }
    let layer_outputs = |state: &str| (0..s.layers).map(|i| format!("{state}_out_{i}")).collect::<Vec<_>>();
    for state in ["h", "c"] {
        let parts = layer_outputs(state);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.node("Concat", &parts, &[&format!("{state}_out")], vec![attr_int("axis", 0)]);
    }
    g.floats("dense_w", &[d, h], &weights.dense_w);
    g.floats("dense_b", &[d], &weights.dense_b);
    g.floats("out_w", &[v, d], &weights.out_w);
    g.floats("out_b", &[v], &weights.out_b);
    g.node("Reshape", &[&last_h, "shape_1_h"], &["features"], vec![]);
    g.node("Gemm", &["features", "dense_w", "dense_b"], &["dense"], vec![attr_int("transB", 1)]);
    g.node("Relu", &["dense"], &["dense_relu"], vec![]);
    g.node("Gemm", &["dense_relu", "out_w", "out_b"], &["logits"], vec![attr_int("transB", 1)]);

    let graph = pb::GraphProto {
        name: "continuo_step".into(),
        node: g.nodes,
        initializer: g.initializers,
        input: graph_inputs(&s)
            .into_iter()
            .map(|(name, dtype, dims)| value_info(name, dtype, &dims))
            .collect(),
        output: vec![
            value_info("logits", pb::tensor_proto::DataType::Float, &[1, v]),
            value_info("h_out", pb::tensor_proto::DataType::Float, &[l, 1, h]),
            value_info("c_out", pb::tensor_proto::DataType::Float, &[l, 1, h]),
        ],
        ..Default::default()
    };
    let role = serde_json::to_value(info.role).expect("a role serialises");
    let training = serde_json::to_string(&info.training).expect("a training summary serialises");
    let metadata = [
        (KEY_FORMAT, s.format_version().to_string()),
        (KEY_NAME, info.name.clone()),
        (KEY_ROLE, role.as_str().unwrap_or("melodic").to_string()),
        (KEY_VOCAB, info.vocab.to_json()),
        (KEY_LAYERS, s.layers.to_string()),
        (KEY_HIDDEN, s.hidden.to_string()),
        (KEY_EMBED, s.embed.to_string()),
        (KEY_DENSE, s.dense.to_string()),
        (KEY_TRAINING, training),
    ]
    .into_iter()
    .chain(s.harmony.map(|input| (KEY_HARMONY, input.id().to_string())))
    .chain(info.tuning.as_ref().map(|t| (KEY_TUNING, tuning_json(t))));
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "continuo".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata
            .map(|(key, value)| pb::StringStringEntryProto { key: key.into(), value })
            .collect(),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl GraphBuilder {
    fn floats(&mut self, name: &str, dims: &[i64], values: &[f32]) {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: values.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ..Default::default()
        });
    }

    fn ints(&mut self, name: &str, dims: &[i64], values: &[i64]) {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: values.to_vec(),
            ..Default::default()
        });
    }

    fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<pb::AttributeProto>) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes.push(pb::NodeProto {
            name,
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }
}

fn attr_int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

fn value_info(name: &str, dtype: pb::tensor_proto::DataType, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: dtype as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The LSTM's recurrent state, `h` and `c` of every layer, [L,1,H] each. The caller owns it
/// between steps; cloning is cheap (shared tensors).
#[derive(Debug, Clone)]
pub struct LstmState {
    h: TValue,
    c: TValue,
}

/// A loaded, checked and optimised model, ready to step.
pub struct Model {
    info: ModelInfo,
    plan: Arc<TypedRunnableModel>,
    /// Per-model execution scratch, reused across steps.
    runner: TypedSimpleState,
    zero_state: LstmState,
    /// The memory every step allocates from (see [`realtime_memory`]); dropped last, after
    /// everything that lives in it.
    pool: StepPool,
    /// The most pool memory one step has taken: a step runs only with room for twice that.
    step_growth: usize,
}

/// Where a model step's allocations come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMemory {
    /// A pool reserved at load (the default): no system allocator in the step.
    Pool,
    /// The system allocator: the baseline the pool is measured against (benches, tests).
    System,
}

/// Steps run at load: the first ones set up tract's scratch memory, which the pool is sized for.
const WARM_UP_STEPS: usize = 8;
/// A pool holds this many times what loading and warming the model took at most, and at least
/// [`MIN_POOL_BYTES`]: room for tract's scratch on the audio thread and for fragmentation.
const POOL_HEADROOM: usize = 4;
const MIN_POOL_BYTES: usize = 256 * 1024;
/// LSTM states a caller may keep alive besides the one stepping: snapshots to go back to (the
/// plugin keeps one before each time step of its lookahead, to hear a musician's note late).
/// Each holds its `h` and `c` in the pool, so the pool has room for them on top.
pub const HELD_STATES: usize = 64;
/// What one held state takes in the pool beyond its numbers: two tensors' bookkeeping and the
/// allocator's block headers.
const HELD_STATE_OVERHEAD: usize = 512;

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Clone for Model {
    /// Another runner over the same optimised plan, in a pool of its own: each clone steps
    /// independently.
    fn clone(&self) -> Model {
        let mut pool = if self.pool.is_reserved() {
            StepPool::reserve(self.pool.capacity()).expect("a pool as large as one reserved before")
        } else {
            StepPool::none()
        };
        let (runner, zero_state) = pool
            .run(|| fresh_runner(&self.plan, &self.info.shape))
            .expect("a plan that ran once spawns again");
        Model {
            info: self.info.clone(),
            plan: self.plan.clone(),
            runner,
            zero_state,
            pool,
            step_growth: self.step_growth,
        }
    }
}

/// A runner and the zero state, made in whatever memory the caller runs this in.
fn fresh_runner(
    plan: &Arc<TypedRunnableModel>,
    shape: &ModelShape,
) -> TractResult<(TypedSimpleState, LstmState)> {
    let runner = TypedSimpleState::new(plan)?;
    let zeros = Tensor::zero::<f32>(&[shape.layers, 1, shape.hidden])?;
    Ok((runner, LstmState { h: zeros.clone().into_tvalue(), c: zeros.into_tvalue() }))
}

impl Model {
    /// Loads a model file. Errors name the file.
    pub fn load_file(path: &Path) -> Result<Model, ModelError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::new(&origin, format!("cannot read the file: {e}")))?;
        Model::load(&bytes, &origin)
    }

    /// Loads a model from ONNX bytes; `origin` names them in errors (a file name, "embedded").
    pub fn load(bytes: &[u8], origin: &str) -> Result<Model, ModelError> {
        Model::load_with_memory(bytes, origin, StepMemory::Pool)
    }

    /// [`Model::load`], choosing where the steps allocate.
    pub fn load_with_memory(bytes: &[u8], origin: &str, memory: StepMemory) -> Result<Model, ModelError> {
        let fail = |problem: String| ModelError::new(origin, problem);
        if bytes.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        let proto = pb::ModelProto::decode(bytes)
            .map_err(|_| fail("this is not an ONNX file (it cannot be decoded as one)".into()))?;
        let info = read_info(&proto).map_err(fail)?;
        check_signature(&proto, &info.shape).map_err(fail)?;

        let s = info.shape;
        let (l, h) = (s.layers, s.hidden);
        let plan = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .and_then(|m| m.with_input_fact(0, i64::fact([1]).into()))
            .and_then(|m| m.with_input_fact(1, f32::fact([l, 1, h]).into()))
            .and_then(|m| m.with_input_fact(2, f32::fact([l, 1, h]).into()))
            .and_then(|m| match s.harmony {
                Some(input) => m.with_input_fact(3, f32::fact([1, input.width()]).into()),
                None => Ok(m),
            })
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| fail(format!("the graph does not run: {e:#}")))?;

        // How much memory the steps need: a runner warmed up on the system allocator, measured.
        // On a thread of its own: tract keeps scratch in thread-locals, and scratch from the system
        // allocator left on this thread would be freed inside a later step, on the audio thread
        // if this one becomes it (a host that activates and processes on one thread).
        let mut pool = if memory == StepMemory::Pool && realtime_memory::allocator_installed() {
            let measure = || {
                realtime_memory::measure_peak(|| -> TractResult<()> {
                    let (mut runner, zero_state) = fresh_runner(&plan, &s)?;
                    let mut state = zero_state;
                    let mut logits = vec![0.0; s.vocab];
                    for token in 0..WARM_UP_STEPS {
                        run_step(
                            &mut runner,
                            s.harmony,
                            token as u32,
                            (Harmony::SILENT, 0),
                            &mut state,
                            &mut logits,
                        )?;
                    }
                    Ok(())
                })
            };
            let (warmed, peak) = std::thread::scope(|scope| scope.spawn(measure).join())
                .map_err(|_| fail("the graph's warm-up panicked".to_string()))?;
            warmed.map_err(|e| fail(format!("the graph does not run: {e:#}")))?;
            let held =
                HELD_STATES * (2 * s.layers * s.hidden * std::mem::size_of::<f32>() + HELD_STATE_OVERHEAD);
            StepPool::reserve((peak * POOL_HEADROOM).max(MIN_POOL_BYTES) + held).map_err(fail)?
        } else {
            StepPool::none()
        };
        let (runner, zero_state) =
            pool.run(|| fresh_runner(&plan, &s)).map_err(|e| fail(format!("{e:#}")))?;
        let mut model = Model { info, plan, runner, zero_state, pool, step_growth: 0 };

        // Warm up, and check the outputs are what the contract promises, before anyone relies on it.
        let mut state = model.initial_state();
        let mut logits = vec![0.0; s.vocab];
        for token in 0..WARM_UP_STEPS {
            model.step(token as u32, &mut state, &mut logits).map_err(|e| fail(e.problem))?;
        }
        if state.h.shape() != [l, 1, h] || state.c.shape() != [l, 1, h] {
            return Err(fail(format!(
                "the graph returns a state of shape {:?}, not [{l}, 1, {h}]",
                state.h.shape()
            )));
        }
        Ok(model)
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The state before any token: zeros, as in training.
    pub fn initial_state(&self) -> LstmState {
        self.zero_state.clone()
    }

    /// The model's real-time memory: bytes reserved (0 when steps use the system allocator)
    /// and bytes in use.
    pub fn memory(&self) -> (usize, usize) {
        (self.pool.capacity(), self.pool.in_use())
    }

    /// Whether the next step has room in the model's memory. A real-time caller asks first: a
    /// step without room is refused (see [`Model::step`]), and the caller skips it.
    pub fn has_room_for_step(&self) -> bool {
        !self.pool.is_reserved() || self.pool.free() >= 2 * self.step_growth
    }

    /// Runs `f` with allocations served from the model's real-time memory, as a step's are
    /// (tests use it to fill that memory).
    pub fn run_in_step_memory<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.pool.run(f)
    }

    /// Reads one token, advances `state`, and writes the next token's logits into `logits`
    /// (length V). A model that hears the harmony hears none ([`Harmony::SILENT`]).
    pub fn step(&mut self, token: u32, state: &mut LstmState, logits: &mut [f32]) -> Result<(), ModelError> {
        self.step_in(token, Harmony::SILENT, 0, state, logits)
    }

    /// Whether the model hears the harmony of the other parts (contract version 2).
    pub fn follows_harmony(&self) -> bool {
        self.info.shape.harmony.is_some()
    }

    /// [`Model::step`] in `harmony`, what the other parts sound once the token is read, with
    /// the clock at grid step `step` from the music's first bar line then (a model that hears
    /// no harmony ignores both; one that hears no meter ignores the clock). tract allocates
    /// inside; with a pool, from the pool only. A step without room in the pool is refused with
    /// an error, and nothing changes.
    pub fn step_in(
        &mut self,
        token: u32,
        harmony: Harmony,
        step: u64,
        state: &mut LstmState,
        logits: &mut [f32],
    ) -> Result<(), ModelError> {
        let origin = &self.info.name;
        let vocab = self.info.shape.vocab;
        if token as usize >= vocab || logits.len() != vocab {
            return Err(ModelError::new(
                origin,
                format!("token {token} or logits buffer of {} outside vocabulary of {vocab}", logits.len()),
            ));
        }
        if !self.has_room_for_step() {
            return Err(ModelError::new(
                origin,
                format!(
                    "no room for a step in the model's real-time memory ({} of {} bytes in use)",
                    self.pool.in_use(),
                    self.pool.capacity()
                ),
            ));
        }
        let before = self.pool.in_use();
        let input = self.info.shape.harmony;
        let Model { pool, runner, .. } = self;
        let result = pool.run(|| run_step(runner, input, token, (harmony, step), state, logits));
        self.step_growth = self.step_growth.max(self.pool.peak_of_last_run().saturating_sub(before));
        result.map_err(|e| ModelError::new(&self.info.name, format!("step failed: {e:#}")))
    }
}

/// The widest harmony input ([`HarmonyInput::width`]).
const MAX_HARMONY_WIDTH: usize = 24;

/// One step through tract: the graph's state outputs move into `state`, its logits are copied.
fn run_step(
    runner: &mut TypedSimpleState,
    input: Option<HarmonyInput>,
    token: u32,
    (harmony, step): (Harmony, u64),
    state: &mut LstmState,
    logits: &mut [f32],
) -> TractResult<()> {
    let mut inputs = tvec!(tensor1(&[token as i64]).into_tvalue(), state.h.clone(), state.c.clone());
    if let Some(input) = input {
        let mut numbers = [0.0f32; MAX_HARMONY_WIDTH];
        let numbers = &mut numbers[..input.width()];
        input.write(harmony, step, numbers);
        inputs.push(Tensor::from_shape(&[1, numbers.len()], numbers)?.into_tvalue());
    }
    let mut outputs = runner.run(inputs)?;
    if outputs.len() != 3 {
        return Err(TractError::msg(format!("the graph returned {} outputs, not 3", outputs.len())));
    }
    state.c = outputs.pop().expect("3 outputs");
    state.h = outputs.pop().expect("3 outputs");
    let out = outputs[0].try_as_plain_ram().and_then(|view| view.as_slice::<f32>())?;
    if out.len() != logits.len() {
        return Err(TractError::msg(format!(
            "the graph returned {} logits, not {}",
            out.len(),
            logits.len()
        )));
    }
    logits.copy_from_slice(out);
    Ok(())
}

impl LstmState {
    /// Hidden state as [layer][unit] values, for inspection and tests.
    pub fn h(&self) -> &[f32] {
        floats(&self.h)
    }
    pub fn c(&self) -> &[f32] {
        floats(&self.c)
    }
}

fn floats(value: &TValue) -> &[f32] {
    value.as_plain_ram().and_then(|view| view.as_slice::<f32>().ok()).unwrap_or(&[])
}

fn read_info(proto: &pb::ModelProto) -> Result<ModelInfo, String> {
    let get = |key: &str| proto.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.as_str());
    let version = get(KEY_FORMAT).ok_or_else(|| {
        let producer = if proto.producer_name.is_empty() { "an unknown tool" } else { &proto.producer_name };
        format!(
            "this ONNX file is not a Continuo model (made by {producer}, it has no '{KEY_FORMAT}' \
             metadata). Export one with `continuo-train export`."
        )
    })?;
    let version: u32 = version.parse().map_err(|_| format!("'{KEY_FORMAT}' is '{version}', not a number"))?;
    if !(1..=FORMAT_VERSION).contains(&version) {
        let which = if version > FORMAT_VERSION { "a newer" } else { "an older" };
        return Err(format!(
            "the model uses contract version {version}, made by {which} Continuo; this build reads \
             versions 1 to {FORMAT_VERSION}"
        ));
    }
    let required = |key: &str| get(key).ok_or_else(|| format!("the model lacks its '{key}' metadata"));
    let size = |key: &str| -> Result<usize, String> {
        let value = required(key)?;
        value.parse().map_err(|_| format!("'{key}' is '{value}', not a size"))
    };
    let vocab = VocabSpec::from_json(required(KEY_VOCAB)?).map_err(|e| format!("its vocabulary: {e}"))?;
    let role: Role = serde_json::from_value(serde_json::Value::String(required(KEY_ROLE)?.to_string()))
        .map_err(|_| format!("'{KEY_ROLE}' is '{}', not melodic or drums", get(KEY_ROLE).unwrap_or("")))?;
    let training = match get(KEY_TRAINING) {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| format!("'{KEY_TRAINING}' is not readable: {e}"))?
        }
        None => TrainingSummary::default(),
    };
    let tuning = match get(KEY_TUNING) {
        Some(json) => {
            let tuning: Tuning =
                serde_json::from_str(json).map_err(|e| format!("'{KEY_TUNING}' is not readable: {e}"))?;
            tuning.check().map_err(|e| format!("'{KEY_TUNING}' cannot be played: {e}"))?;
            Some(tuning)
        }
        None => None,
    };
    let harmony = match (version >= FIRST_HARMONY_VERSION, get(KEY_HARMONY)) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(format!("a version {version} model has no harmony input, yet it names one"))
        }
        (true, None) => return Err(format!("the model lacks its '{KEY_HARMONY}' metadata")),
        (true, Some(id)) => Some(HarmonyInput::from_id(id).ok_or_else(|| {
            let known: Vec<&str> = HarmonyInput::ALL.iter().map(|i| i.id()).collect();
            format!("'{KEY_HARMONY}' is '{id}'; this build knows {known:?}")
        })?),
    };
    Ok(ModelInfo {
        name: get(KEY_NAME).unwrap_or("unnamed").to_string(),
        role,
        shape: ModelShape {
            layers: size(KEY_LAYERS)?,
            hidden: size(KEY_HIDDEN)?,
            embed: size(KEY_EMBED)?,
            dense: size(KEY_DENSE)?,
            vocab: vocab.size as usize,
            harmony,
        },
        vocab,
        training,
        tuning,
    })
}

/// The graph's inputs, in order: the token, the state, and the harmony when the model hears one.
fn graph_inputs(s: &ModelShape) -> Vec<(&'static str, pb::tensor_proto::DataType, Vec<i64>)> {
    use pb::tensor_proto::DataType;
    let (l, h) = (s.layers as i64, s.hidden as i64);
    let mut inputs = vec![
        ("token", DataType::Int64, vec![1]),
        ("h", DataType::Float, vec![l, 1, h]),
        ("c", DataType::Float, vec![l, 1, h]),
    ];
    if s.harmony.is_some() {
        inputs.push(("harmony", DataType::Float, vec![1, s.harmony_width() as i64]));
    }
    inputs
}

/// Checks the graph's inputs and outputs against the contract and the sizes the metadata claims.
fn check_signature(proto: &pb::ModelProto, s: &ModelShape) -> Result<(), String> {
    use pb::tensor_proto::DataType;
    let graph = proto.graph.as_ref().ok_or("the file holds no graph")?;
    let (l, h, v) = (s.layers as i64, s.hidden as i64, s.vocab as i64);
    let expect = |side: &str, found: &[pb::ValueInfoProto], want: &[(&str, DataType, Vec<i64>)]| {
        let one = side.trim_end_matches('s');
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        let wanted: Vec<&str> = want.iter().map(|w| w.0).collect();
        if names != wanted {
            return Err(format!("its {side} are {names:?}; a Continuo model has {wanted:?}"));
        }
        for (info, (name, dtype, dims)) in found.iter().zip(want) {
            let Some(pb::type_proto::Value::TensorType(t)) =
                info.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                return Err(format!("{one} '{name}' has no tensor type"));
            };
            let shape: Vec<i64> = t
                .shape
                .iter()
                .flat_map(|s| &s.dim)
                .map(|d| match d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) => n,
                    _ => -1,
                })
                .collect();
            if t.elem_type != *dtype as i32 || &shape != dims {
                return Err(format!(
                    "{one} '{name}' is {:?} {shape:?}; the metadata says it should be {dtype:?} {dims:?}",
                    DataType::try_from(t.elem_type).unwrap_or(DataType::Undefined)
                ));
            }
        }
        Ok(())
    };
    expect("inputs", &graph.input, &graph_inputs(s))?;
    expect(
        "outputs",
        &graph.output,
        &[
            ("logits", DataType::Float, vec![1, v]),
            ("h_out", DataType::Float, vec![l, 1, h]),
            ("c_out", DataType::Float, vec![l, 1, h]),
        ],
    )
}
