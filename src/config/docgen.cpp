// Prints the configuration reference; its output is committed as docs/configuration.md.
#include <iostream>

#include "mqdr/config_loader.hpp"

int main() {
  std::cout << mqdr::config::reference_markdown();
  return 0;
}
