// Model files: safetensors with the state dict under torchvision names and metadata (dearest
// version, architecture spec, classes, dataset, normalization, training configuration, weights
// fingerprint). Training checkpoints add the optimizer state ("optimizer/<param>.<buffer>") and
// the position in the run, so an interrupted run resumes exactly.
#pragma once
#include <map>
#include <string>

#include "nn/models.h"
#include "nn/optim.h"

namespace dearest::nn {

using Metadata = std::map<std::string, std::string>;

void save_model(const std::string& path, const Module& model, const ModelSpec& spec, Metadata meta = {});

struct LoadedModel {
  ModulePtr model;
  ModelSpec spec;
  Metadata meta;
  LoadReport report;
};
// Builds the model from the file's "arch" metadata (or `spec` when given, e.g. for a file made
// by PyTorch) and loads the weights (aliases applied). strict: every key must match.
LoadedModel load_model(const std::string& path, const std::string& spec = "", bool strict = true);

// A training checkpoint: model, optimizer state, and run state in the metadata.
void save_checkpoint(const std::string& path, const Module& model, const ModelSpec& spec, const Optimizer& opt,
                     Metadata meta);
// Loads model weights and optimizer state in place; returns the metadata.
Metadata load_checkpoint(const std::string& path, Module& model, Optimizer& opt);

std::string fingerprint(const Module& model);

}  // namespace dearest::nn
