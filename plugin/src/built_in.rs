//! The models compiled into the plugin, and what a musician chooses to play: one of them, or a
//! model file of their own.
//!
//! The choice is the `Model` parameter ([`ModelChoice`]: automatable, saved with the project);
//! the file, when the choice is "Your model file", is the persisted `model-path`. Together they
//! are a [`ModelSource`], which [`crate::model_switch`] opens.

use std::fmt;

use nice_plug::prelude::Enum;

/// The `Model` parameter's values, as the host lists them. The ids are stable: projects and
/// automation refer to them.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelChoice {
    #[id = "bach-chorales"]
    #[name = "Bach chorales"]
    BachChorales,
    #[id = "folk-melody"]
    #[name = "Folk melody"]
    FolkMelody,
    #[id = "bass-line"]
    #[name = "Bass line"]
    BassLine,
    #[id = "drums"]
    #[name = "Drums"]
    Drums,
    #[id = "continuo-bass"]
    #[name = "Continuo bass (follows chords)"]
    ContinuoBass,
    #[id = "chorale-melody"]
    #[name = "Melody (over chords)"]
    ChoraleMelody,
    #[id = "chorale-harmony"]
    #[name = "Harmony (under a melody)"]
    ChoraleHarmony,
    #[id = "groove-bass"]
    #[name = "Groove bass (follows chords)"]
    GrooveBass,
    #[id = "keys-comping"]
    #[name = "Keys comping (follows chords)"]
    KeysComping,
    #[id = "file"]
    #[name = "Your model file"]
    File,
}

/// A model compiled into the plugin.
pub struct BuiltIn {
    pub choice: ModelChoice,
    /// As messages name it.
    pub name: &'static str,
    /// What it plays, in a few words, for the window's list.
    pub description: &'static str,
    pub bytes: &'static [u8],
}

/// The built-in models, each with a model card in models/.
pub const BUILT_IN: [BuiltIn; 9] = [
    BuiltIn {
        choice: ModelChoice::BachChorales,
        name: "Bach chorales",
        description: "four-part chorale harmony",
        bytes: include_bytes!("../../models/bach-chorales.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::FolkMelody,
        name: "Folk melody",
        description: "fiddle and folk tunes, one voice",
        bytes: include_bytes!("../../models/folk-melody.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::BassLine,
        name: "Bass line",
        description: "the bass of the chorales, one voice",
        bytes: include_bytes!("../../models/bass-line.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::Drums,
        name: "Drums",
        description: "a General MIDI kit in many popular grooves, on channel 10",
        bytes: include_bytes!("../../models/drums.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::ContinuoBass,
        name: "Continuo bass",
        description: "a chorale bass under the chords held at the MIDI input",
        bytes: include_bytes!("../../models/continuo-bass.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::ChoraleMelody,
        name: "Melody over chords",
        description: "a chorale soprano over the chords held at the MIDI input",
        bytes: include_bytes!("../../models/chorale-melody.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::ChoraleHarmony,
        name: "Harmony under a melody",
        description: "alto, tenor and bass under the melody played into the MIDI input",
        bytes: include_bytes!("../../models/chorale-harmony.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::GrooveBass,
        name: "Groove bass",
        description:
            "a band's bass in many popular grooves, on the beat of the chords held at the MIDI input",
        bytes: include_bytes!("../../models/groove-bass.onnx"),
    },
    BuiltIn {
        choice: ModelChoice::KeysComping,
        name: "Keys comping",
        description: "a band's piano in many popular grooves, comping the chords held at the MIDI input",
        bytes: include_bytes!("../../models/keys-comping.onnx"),
    },
];

/// What plays when nothing else can: the first built-in model.
pub const DEFAULT: &BuiltIn = &BUILT_IN[0];

impl ModelChoice {
    /// The built-in model chosen, or None for the musician's file.
    pub fn built_in(self) -> Option<&'static BuiltIn> {
        BUILT_IN.iter().find(|b| b.choice == self)
    }
}

/// A model to open: built in, or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    BuiltIn(ModelChoice),
    File(String),
}

impl ModelSource {
    /// What the `Model` parameter and the persisted file path ask for.
    pub fn chosen(choice: ModelChoice, path: &str) -> ModelSource {
        match choice.built_in() {
            Some(built_in) => ModelSource::BuiltIn(built_in.choice),
            None => ModelSource::File(path.to_string()),
        }
    }

    /// The `Model` parameter's value that plays this source.
    pub fn choice(&self) -> ModelChoice {
        match self {
            ModelSource::BuiltIn(choice) => *choice,
            ModelSource::File(_) => ModelChoice::File,
        }
    }

    /// The file, for a file.
    pub fn path(&self) -> Option<&str> {
        match self {
            ModelSource::File(path) => Some(path),
            ModelSource::BuiltIn(_) => None,
        }
    }
}

impl fmt::Display for ModelSource {
    /// As messages name it: "the built-in Folk melody model", or the file's path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSource::BuiltIn(choice) => {
                write!(f, "the built-in {} model", choice.built_in().map_or("default", |b| b.name))
            }
            ModelSource::File(path) if path.is_empty() => write!(f, "no model file (load one in the window)"),
            ModelSource::File(path) => write!(f, "{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuo_engine::midi::Role;
    use continuo_engine::model::Model;

    #[test]
    fn every_built_in_model_loads_with_its_role_a_name_and_losses() {
        let mut names = Vec::new();
        for built_in in &BUILT_IN {
            let model = Model::load(built_in.bytes, built_in.name).unwrap();
            let info = model.info();
            assert_eq!(info.name, built_in.name, "the model's own name is the one the window lists");
            let role = if built_in.choice == ModelChoice::Drums { Role::Drums } else { Role::Melodic };
            assert_eq!(info.role, role, "{}", info.name);
            // Trained: well below the unigram NLL of any of their data (3.9 nats and more; the
            // grooves' velocities are random, which keeps their losses highest).
            assert!(
                info.training.validation_loss.is_some_and(|l| l < 2.0),
                "{}: {:?}",
                info.name,
                info.training
            );
            assert_eq!(built_in.choice.built_in().map(|b| b.name), Some(built_in.name));
            names.push(info.name.clone());
        }
        names.dedup();
        assert_eq!(names.len(), BUILT_IN.len());
        assert!(ModelChoice::File.built_in().is_none());
    }

    #[test]
    fn the_choice_and_the_path_make_the_source() {
        assert_eq!(
            ModelSource::chosen(ModelChoice::BassLine, "/a.onnx"),
            ModelSource::BuiltIn(ModelChoice::BassLine)
        );
        assert_eq!(ModelSource::chosen(ModelChoice::File, "/a.onnx"), ModelSource::File("/a.onnx".into()));
        assert_eq!(ModelSource::File("/a.onnx".into()).choice(), ModelChoice::File);
        assert_eq!(
            ModelSource::BuiltIn(ModelChoice::FolkMelody).to_string(),
            "the built-in Folk melody model"
        );
    }
}
