/* export/filter: the times and ids export's --from/--to/--task/--thread
 * take; util/put: the number formatting the Chrome export uses. */
#include <errno.h>
#include <stdint.h>

#include "export/filter.h"
#include "unit.h"
#include "util/put.h"

static int parse(const char *text, uint64_t *ns)
{
	*ns = 12345; /* left alone on errors */
	return export_filter__parse_time(text, ns);
}

UNIT_TEST(export_filter_parses_times_exactly)
{
	static const struct { const char *text; uint64_t ns; } good[] = {
		{ "1.5s", 1500000000ULL }, { "200ms", 200000000ULL }, { "30us", 30000ULL },
		{ "100ns", 100ULL }, { "0", 0 }, { "0s", 0 }, { ".5ms", 500000ULL },
		{ "2.25us", 2250ULL }, { "1.000000001s", 1000000001ULL }, { "3.00ns", 3 },
		{ "7\xc2\xb5s", 7000ULL }, { "14.0ms", 14000000ULL }, { "812ns", 812 },
		{ "18446744073709551615ns", UINT64_MAX }, { "18446744073s", 18446744073000000000ULL },
	};
	uint64_t ns;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int err = parse(good[i].text, &ns);

		if (err || ns != good[i].ns)
			fprintf(stderr, "  %s: err %d, %llu ns\n", good[i].text, err, (unsigned long long)ns);
		CHECK(err == 0 && ns == good[i].ns);
	}
}

UNIT_TEST(export_filter_refuses_what_is_not_a_time)
{
	static const char *const bad[] = {
		"", "s", "1", "1.5", "abc", "1.5 s", "-1s", "1m", "1min", "1.5sec", "1..5s", "1.5.s",
		".s", "1.0000000001s", "1.5ns", "3.10ns", "0x10ms", " 1s", "1s ",
	};
	uint64_t ns;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse(bad[i], &ns);

		if (err != -EINVAL)
			fprintf(stderr, "  '%s': err %d, want -EINVAL\n", bad[i], err);
		CHECK(err == -EINVAL && ns == 12345);
	}
	CHECK(parse("18446744073709551616ns", &ns) == -ERANGE);
	CHECK(parse("18446744074s", &ns) == -ERANGE);
	CHECK(parse("99999999999999999999999s", &ns) == -ERANGE);
}

UNIT_TEST(export_filter_ids)
{
	struct export_filter f;

	export_filter__init(&f);
	CHECK(export_filter__keeps_task(&f, 7) && export_filter__keeps_thread(&f, 7));
	CHECK(export_filter__add_task(&f, "3") == 0);
	CHECK(export_filter__add_task(&f, "12") == 0);
	CHECK(export_filter__add_thread(&f, "4242") == 0);
	CHECK(export_filter__add_task(&f, "0") == -EINVAL);
	CHECK(export_filter__add_task(&f, "-1") == -EINVAL);
	CHECK(export_filter__add_task(&f, "x") == -EINVAL);
	CHECK(export_filter__add_task(&f, "") == -EINVAL);
	CHECK(export_filter__add_thread(&f, "4294967296") == -EINVAL);
	CHECK(f.task_count == 2 && f.thread_count == 1);
	CHECK(export_filter__keeps_task(&f, 3) && export_filter__keeps_task(&f, 12));
	CHECK(!export_filter__keeps_task(&f, 4));
	CHECK(export_filter__keeps_thread(&f, 4242) && !export_filter__keeps_thread(&f, 4243));
	CHECK(export_filter__keeps_task(NULL, 4) && export_filter__keeps_thread(NULL, 1));
	export_filter__free(&f);
	CHECK(f.tasks == NULL && f.task_count == 0 && f.to_ns == UINT64_MAX);
}

UNIT_TEST(export_filter_time_range_is_inclusive)
{
	struct export_filter f;
	struct wake w = { .ts = 150, .poll_ts = 250, .tid = 1, .target = 1, .poll_tid = 1 };
	struct cancellation c = { .ts = 300, .task = 1 };

	export_filter__init(&f);
	/* As bind makes them for a trace whose first poll is at 100. */
	f.from_ns = 50;
	f.to_ns = 150;
	f.from_abs = 150;
	f.to_abs = 250;
	f.timed = true;
	CHECK(export_filter__keeps_wake(&f, &w));
	w.poll_ts = 251; /* its arrow would end outside */
	CHECK(!export_filter__keeps_wake(&f, &w));
	w.poll_ts = 0;   /* led to no poll: only its own time counts */
	CHECK(export_filter__keeps_wake(&f, &w));
	CHECK(!export_filter__keeps_cancellation(&f, &c));
	c.ts = 250;
	CHECK(export_filter__keeps_cancellation(&f, &c));
	export_filter__free(&f);
}

UNIT_TEST(put_numbers)
{
	char buf[64], *end;

	end = put_u64(buf, 0);
	CHECK(end - buf == 1 && !memcmp(buf, "0", 1));
	end = put_u64(buf, 18446744073709551615ULL);
	*end = 0;
	CHECK_STR(buf, "18446744073709551615");
	end = put_u64(buf, 1000000);
	*end = 0;
	CHECK_STR(buf, "1000000");
	/* Each side of every power of ten: the digit count comes from a table. */
	for (uint64_t p10 = 1, i = 0; i < 20; i++, p10 *= 10) {
		char want[32];

		for (uint64_t v = p10 - 1; v <= p10 + 1; v++) {
			end = put_u64(buf, v);
			*end = 0;
			snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
			CHECK(!strcmp(buf, want));
		}
		if (p10 > UINT64_MAX / 10)
			break;
	}
	end = put_us(buf, 1234567);
	*end = 0;
	CHECK_STR(buf, "1234.567");
	end = put_us(buf, 5);
	*end = 0;
	CHECK_STR(buf, "0.005");
	end = put_hex(buf, 0x55da5e5b6c80ULL);
	*end = 0;
	CHECK_STR(buf, "55da5e5b6c80");
	end = put_hex(buf, 0xabc);
	*end = 0;
	CHECK_STR(buf, "abc");
	end = put_hex(buf, 0);
	*end = 0;
	CHECK_STR(buf, "0");
	end = put_hex(buf, UINT64_MAX);
	*end = 0;
	CHECK_STR(buf, "ffffffffffffffff");
}
