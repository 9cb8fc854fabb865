#pragma once
// For test code that forks an mqdr child: called in the child right after fork(), so that the
// child never outlives the test process. A test killed by ctest's timeout (or by hand) would
// otherwise leave a daemon behind that keeps relaying with the same mirror names, and so the same
// durable consumers and consumer groups, as the tests that follow.

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>

namespace mqdr::test {

inline void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(127);  // the parent died before prctl took effect
}

}  // namespace mqdr::test
