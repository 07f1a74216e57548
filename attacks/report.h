// A run folder of dearest attack as tables: every stage's epochs (training loss, time, CDA/ASR
// under each judged quantizer), the chosen epochs, the start and the final verdicts. Reads what
// is on disk, so a run still in progress reports the epochs it has finished.
#pragma once
#include <string>

namespace dearest::attacks {

// Markdown. `run` is the run folder (OUT.run, or an --out folder).
std::string run_report(const std::string& run);

}  // namespace dearest::attacks
