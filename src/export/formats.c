#include <string.h>

#include "export/export.h"

static const struct export_format *const formats[] = {
	&chrome_export_format,
	&perfetto_export_format,
	&folded_export_format,
	&pprof_export_format,
	&speedscope_export_format,
	&svg_export_format,
	NULL,
};

const struct export_format *const *export_formats(void)
{
	return formats;
}

const struct export_format *export_format__find(const char *name)
{
	for (size_t i = 0; formats[i]; i++)
		if (!strcmp(formats[i]->name, name))
			return formats[i];
	return NULL;
}
