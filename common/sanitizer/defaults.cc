// The sanitizer tree's defaults (KNODE_SANITIZE only): every binary of it, the daemon
// included, symbolizes its reports with the symbolizer found at configure time and stops
// at the first report, so a test cannot pass over one. ASAN_OPTIONS / UBSAN_OPTIONS in the
// environment still override these.
extern "C" const char* __asan_default_options() {
  return "external_symbolizer_path=" KNODE_SYMBOLIZER ":abort_on_error=0:detect_leaks=1:"
         "check_initialization_order=1:detect_stack_use_after_return=1";
}

extern "C" const char* __ubsan_default_options() {
  return "external_symbolizer_path=" KNODE_SYMBOLIZER ":print_stacktrace=1:halt_on_error=1";
}

extern "C" const char* __lsan_default_options() { return "print_suppressions=0"; }
