/* cond_tail leaves through a conditional tail call (`jne other`), an exit
 * the probes cannot take: record must say so (its polls end as unwound).
 * Written in assembly so no compiler turns it into something else.
 * Ground truth: 10 calls, 9 of them through the jump (x != 0). */
long other(long x);
long cond_tail(long x);

__asm__(".text\n"
	".globl cond_tail\n"
	".type cond_tail,@function\n"
	"cond_tail:\n"
	"\ttest %rdi,%rdi\n"
	"\tjne other\n"
	"\txor %eax,%eax\n"
	"\tret\n"
	".size cond_tail, .-cond_tail\n");

__attribute__((noinline)) long other(long x)
{
	return x * 3;
}

int main(void)
{
	long sum = 0;

	for (long i = 0; i < 10; i++)
		sum += cond_tail(i);
	return sum == 135 ? 0 : 1;
}
