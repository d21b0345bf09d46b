/* test_auditlog.c - placeholder until its owner lands it; exits 77 (skip). */
int main(void) { return 77; }
