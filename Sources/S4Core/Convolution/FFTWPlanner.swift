import Foundation

/// FFTW's planner is not thread-safe (plan execution is): every plan in the process is made and
/// destroyed under this lock.
let fftwPlannerLock = NSLock()
