#include "mqdr/cli.hpp"

int main(int argc, char** argv) { return mqdr::cli::main(argc, argv); }
