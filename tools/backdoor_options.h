// The backdoor a model is measured against (trigger, target, source classes, whether the target
// class counts in the ASR), from the command line or, by default, from what dearest attack
// recorded in the model file. Shared by judge and defend.
#pragma once
#include <map>
#include <string>

#include "attacks/judge.h"
#include "tools/cli.h"

namespace dearest::cli {

std::map<std::string, std::string> file_metadata(const std::string& path);
// The backdoor entries dearest attack records (attack, trigger, trigger_spec, target, source
// classes, attack parameters), copied from `from` into `to`: a model made from a backdoored one
// (quantized, defended) stays judgeable without --trigger.
void copy_backdoor_metadata(const std::map<std::string, std::string>& from, std::map<std::string, std::string>& to);
void add_backdoor_options(po::options_description& d);
// data, trigger, target, sources, include_target, images and batch of a JudgeOptions.
// `trigger_spec`, when given, receives the trigger's spec text (to record with a defended model).
// `fallback`: the trigger of a model that records none and was given none (for the commands that
// do not need one, such as the trigger-agnostic detectors); empty: that is an error.
attacks::JudgeOptions backdoor_options(const po::variables_map& vm, const std::string& model_file,
                                       std::string* trigger_spec = nullptr, const std::string& fallback = "");

}  // namespace dearest::cli
