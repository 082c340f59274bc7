//! AdamW with gradient clipping, owned here so that its moments can be saved and restored:
//! a resumed run continues exactly where it stopped (candle's own AdamW keeps them private).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

pub struct AdamW {
    /// Parameters sorted by name, so moments line up with names on save and load.
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far (bias correction needs it).
    pub updates: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(varmap: &VarMap, weight_decay: f64) -> Result<AdamW> {
        let mut params: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("the var map is not poisoned")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(AdamW {
            m: params.iter().map(|(_, v)| zeros(v)).collect::<candle_core::Result<_>>()?,
            v: params.iter().map(|(_, v)| zeros(v)).collect::<candle_core::Result<_>>()?,
            params,
            updates: 0,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sum = 0.0f64;
        for (_, var) in &self.params {
            if let Some(g) = grads.get(var) {
                sum += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        Ok(sum.sqrt())
    }

    /// One update at learning rate `lr`, after scaling the gradients down so their global norm
    /// is at most `clip`. Returns the norm before clipping. Weight decay applies to matrices
    /// only, as is usual: biases are not pulled to zero.
    pub fn step(&mut self, grads: &GradStore, lr: f64, clip: f64) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        let scale = if clip > 0.0 && norm > clip { clip / norm } else { 1.0 };
        self.updates += 1;
        let t = self.updates as i32;
        let (correction1, correction2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            // Detached: candle leaves a variable's gradient attached to the ops that made it
            // (a product with another variable, say), and moments built from it would then
            // hold every step's graph, growing by megabytes a step.
            let g = (g.detach() * scale)?;
            self.m[i] = ((&self.m[i] * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            self.v[i] = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&self.m[i] / correction1)?;
            let v_hat = (&self.v[i] / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            let mut value = var.as_tensor().clone();
            if self.weight_decay > 0.0 && value.rank() >= 2 {
                value = (value * (1.0 - lr * self.weight_decay))?;
            }
            var.set(&(value - (update * lr)?)?)?;
        }
        Ok(norm)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            tensors.insert(format!("m.{name}"), self.m[i].clone());
            tensors.insert(format!("v.{name}"), self.v[i].clone());
        }
        // Bias correction depends on how many updates were made: part of the state too.
        tensors.insert("updates".to_string(), Tensor::new(&[self.updates as f64], &Device::Cpu)?);
        candle_core::safetensors::save(&tensors, path)
            .with_context(|| format!("{}: cannot write", path.display()))
    }

    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, device)
            .with_context(|| format!("{}: cannot read the optimizer state", path.display()))?;
        let updates =
            tensors.get("updates").with_context(|| format!("{}: no update count", path.display()))?;
        self.updates = updates.to_vec1::<f64>()?[0] as u64;
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let saved = tensors
                    .get(&format!("{prefix}.{name}"))
                    .with_context(|| format!("{}: no {prefix} moment for {name}", path.display()))?;
                anyhow::ensure!(
                    saved.dims() == var.dims(),
                    "{}: the {prefix} moment of {name} is {:?}, the parameter {:?}",
                    path.display(),
                    saved.dims(),
                    var.dims()
                );
                *slot = saved.clone();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn descends_a_quadratic_and_clips() {
        let varmap = VarMap::new();
        let device = Device::Cpu;
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let x = vb.get_with_hints((2, 2), "x", candle_nn::Init::Const(3.0)).unwrap();
        let mut opt = AdamW::new(&varmap, 0.0).unwrap();
        let mut first_norm = 0.0;
        for i in 0..300 {
            let loss = x.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let norm = opt.step(&grads, 0.05, 1.0).unwrap();
            if i == 0 {
                first_norm = norm;
            }
        }
        assert!((first_norm - 12.0).abs() < 1e-4, "norm of 2x at x=3 over 4 values is 12, got {first_norm}");
        let left = x.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(left < 0.05, "x still {left} after 300 steps");
    }
}
