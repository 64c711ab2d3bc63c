"""Invitation templates: Django's template language in a sandbox, and the default texts.

Admins write an invitation's subject and body with a handful of placeholders
(`PLACEHOLDERS`) and `{% if %}`. The sandbox is a separate `Engine` whose only
built-ins are `{% if %}`, `{% comment %}` and a few text filters: no `load`,
`include`, `extends`, `url`, `debug` or `csrf_token` exist in it, so a template
can reach neither other templates nor anything outside the context it is given.
Unknown placeholders are errors (`check`), never silent blanks.
"""

from django.template import Context, Engine, Library, TemplateSyntaxError
from django.template import defaultfilters, defaulttags
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.defaulttags import IfNode

# What a template may name, with what an admin reads about each in the settings page.
PLACEHOLDERS = {
    "applicant.first_name": "The applicant's first name",
    "applicant.name": "The applicant's full name",
    "booking_link": "Their own booking link for this round",
    "applicant_page": "Their own page (schedule, see and confirm the interview; no login)",
    "cohort.name": "The cohort's name",
    "round": "The round number, 1 or 2",
    "deadline": "The date to book by (empty when the round sets none)",
    "is_rebooking": "True when a cancelled booking brought them back to waiting",
}

DEFAULT_SUBJECT = (
    "{% if is_rebooking %}Please pick a new time: {% endif %}"
    "Your round {{ round }} interview for {{ cohort.name }}"
)
DEFAULT_BODY = """Hello {{ applicant.first_name }},

{% if is_rebooking %}Your interview for {{ cohort.name }} was cancelled, so we would like you to pick a new time for your round {{ round }} interview.{% else %}Thank you for applying to {{ cohort.name }}. We would like to invite you to a round {{ round }} interview.{% endif %}

Please choose a time that suits you here:
{{ booking_link }}
{% if deadline %}
Please book by {{ deadline }}.
{% endif %}{% if applicant_page %}
You can follow your application at {{ applicant_page }}
{% endif %}
This link is yours: it tells us the booking is for your application, so please do not share it.

Best wishes,
The {{ cohort.name }} team
"""

register = Library()
register.tag("if", defaulttags.do_if)
register.tag("comment", defaulttags.comment)
for _name in ("default", "upper", "lower", "title", "capfirst", "date", "yesno", "linebreaksbr"):
    register.filter(_name, getattr(defaultfilters, _name))


class _SandboxEngine(Engine):
    # Engine always adds these three built-in libraries; the sandbox wants none of them.
    default_builtins = []


_engine = None


def _sandbox():
    global _engine
    if _engine is None:
        _engine = _SandboxEngine(builtins=["scheduling.templating"], libraries={}, autoescape=False,
                                 debug=False, loaders=[])
    return _engine


class TemplateError(ValueError):
    """An invitation template that cannot be used; the message is a sentence for the admin."""


def _variables(expression):
    """Yield the dotted variable names a FilterExpression reads (its value and filter arguments)."""
    if isinstance(expression.var, Variable) and expression.var.lookups:
        yield ".".join(expression.var.lookups)
    for _func, args in expression.filters:
        for lookup, arg in args:
            if lookup and isinstance(arg, Variable) and arg.lookups:
                yield ".".join(arg.lookups)


def _condition_variables(condition):
    """Yield the variable names an `{% if %}` condition tree reads."""
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield from _variables(value)
    for side in ("first", "second"):
        child = getattr(condition, side, None)
        if child is not None:
            yield from _condition_variables(child)


def _names(nodelist):
    for node in nodelist.get_nodes_by_type(VariableNode):
        yield from _variables(node.filter_expression)
    for node in nodelist.get_nodes_by_type(IfNode):
        for condition, _ in node.conditions_nodelists:
            if condition is not None:
                yield from _condition_variables(condition)


def compile_template(source):
    """Compile `source` in the sandbox and return the Template.

    Raises TemplateError with a sentence naming the problem: a tag other than
    `if`/`comment` (e.g. `{% load %}` or `{% include %}`), a syntax error, or a
    placeholder outside PLACEHOLDERS.
    """
    try:
        template = _sandbox().from_string(source)
    except TemplateSyntaxError as exc:
        message = str(exc)
        if message.startswith("Invalid block tag") or "Invalid filter" in message:
            message = message.split(". Did you forget")[0]
            message += ". Only placeholders, {% if %} … {% endif %} and simple filters are allowed."
        raise TemplateError(message) from None
    for node in template.nodelist.get_nodes_by_type(TextNode):
        # Django prints a half-written tag as text; in an email that is a visible mistake.
        for opener, closer in (("{{", "}}"), ("{%", "%}"), ("{#", "#}")):
            if opener in node.s or closer in node.s:
                at = node.s.find(opener) if opener in node.s else node.s.find(closer)
                fragment = node.s[at:at + 30].split("\n")[0]
                raise TemplateError(f"“{fragment}” is not a complete placeholder or tag: placeholders "
                                    "look like {{ applicant.first_name }}, tags like {% if is_rebooking %}.")
    for name in _names(template.nodelist):
        if name not in PLACEHOLDERS:
            known = ", ".join("{{ %s }}" % p for p in PLACEHOLDERS)
            raise TemplateError(f"Unknown placeholder {{{{ {name} }}}}. Use one of: {known}.")
    return template


def check(source):
    """Return None when `source` is a usable template, else the error sentence (a str)."""
    try:
        compile_template(source)
    except TemplateError as exc:
        return str(exc)
    return None


def render(source, context):
    """Render `source` with `context` (a dict of PLACEHOLDERS' roots) and return the text.

    No HTML escaping: the result is the plain-text part; the HTML part escapes it.
    Raises TemplateError as `compile_template` does.
    """
    return compile_template(source).render(Context(context, autoescape=False))
