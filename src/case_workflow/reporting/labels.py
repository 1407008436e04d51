"""The report's labels in French (the default), Arabic and English, with number conventions.

Translators edit the dictionaries below; every language must define the same keys (a test checks
it). ``{shown}`` and ``{total}`` in ``escalated_shown`` are filled in by the renderer. Digits stay
Latin in every language, as Moroccan administrations print them.
"""

from __future__ import annotations

from collections.abc import Mapping

from case_workflow.errors import InvalidInput

__all__ = ["LABELS", "LANGUAGES", "RIGHT_TO_LEFT", "labels_for"]

RIGHT_TO_LEFT = frozenset({"ar"})

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Rapport d'escalade",
        "as_of": "Situation au",
        "timezone": "Fuseau horaire",
        "deadline": "Délai suivi",
        "all_deadlines": "tous les délais",
        "scope": "Périmètre",
        "all_dossiers": "tous les dossiers",
        "filter_respondent": "Organisme mis en cause",
        "filter_region": "Région",
        "filter_workflow": "Circuit",
        "filed_from": "Déposés à partir du",
        "filed_to": "Déposés jusqu'au",
        "summary": "Synthèse",
        "open_total": "Dossiers en cours",
        "overdue_total": "Dossiers en retard",
        "answered_on_time": "Réponses dans le délai",
        "answered_late": "Réponses hors délai",
        "on_time_rate": "Taux de réponse dans le délai",
        "median_answer_days": "Délai médian de réponse (jours)",
        "p90_answer_days": "Délai de réponse, 90e centile (jours)",
        "median_answer_working_days": "Délai médian de réponse (jours ouvrés)",
        "p90_answer_working_days": "Délai de réponse, 90e centile (jours ouvrés)",
        "estimated_holiday_deadlines": "Délais en cours fondés sur une fête estimée",
        "open_by_state": "Dossiers en cours par étape",
        "state": "Étape",
        "count": "Nombre",
        "aging": "Ancienneté des dossiers en cours (jours depuis le dépôt)",
        "overdue_aging": "Retard des dossiers (jours après l'échéance)",
        "days": "Jours",
        "overdue_by_respondent": "Dossiers en retard par organisme",
        "overdue_by_region": "Dossiers en retard par région",
        "overdue_by_level": "Dossiers en retard par niveau d'escalade",
        "level": "Niveau",
        "level_zero": "0 (sans escalade)",
        "monthly": "Évolution mensuelle",
        "month": "Mois",
        "filed": "Déposés",
        "answered": "Répondus",
        "overdue_month_end": "En retard en fin de mois",
        "escalations": "Escalades",
        "escalated": "Liste des dossiers en retard",
        "escalated_shown": "{shown} sur {total}, du plus ancien retard au plus récent",
        "reference": "Référence",
        "respondent": "Organisme",
        "region": "Région",
        "due_at": "Échéance",
        "days_overdue": "Jours de retard",
        "unassigned": "non renseigné",
        "not_available": "n.d.",
        "empty": "Aucun dossier.",
        "footnote": (
            "Chiffres recalculés à partir de l'historique des dossiers à la date indiquée. "
            "Les jours sont des jours calendaires locaux, sauf les jours ouvrés, "
            "qui excluent les week-ends et les jours fériés."
        ),
        "decimal_separator": ",",
        "group_separator": "\u202f",
        "percent": "{value}\u00a0%",
        "colon": "\u00a0: ",
    },
    "ar": {
        "title": "تقرير التصعيد",
        "as_of": "الوضعية بتاريخ",
        "timezone": "المنطقة الزمنية",
        "deadline": "الأجل المتتبع",
        "all_deadlines": "جميع الآجال",
        "scope": "النطاق",
        "all_dossiers": "جميع الملفات",
        "filter_respondent": "الإدارة المشتكى بها",
        "filter_region": "الجهة",
        "filter_workflow": "المسطرة",
        "filed_from": "المودعة ابتداء من",
        "filed_to": "المودعة إلى غاية",
        "summary": "ملخص",
        "open_total": "الملفات الجارية",
        "overdue_total": "الملفات المتأخرة",
        "answered_on_time": "الأجوبة داخل الأجل",
        "answered_late": "الأجوبة خارج الأجل",
        "on_time_rate": "نسبة الأجوبة داخل الأجل",
        "median_answer_days": "المدة الوسيطة للجواب (بالأيام)",
        "p90_answer_days": "مدة الجواب، المئين التسعون (بالأيام)",
        "median_answer_working_days": "المدة الوسيطة للجواب (بأيام العمل)",
        "p90_answer_working_days": "مدة الجواب، المئين التسعون (بأيام العمل)",
        "estimated_holiday_deadlines": "آجال جارية مبنية على عيد تقديري",
        "open_by_state": "الملفات الجارية حسب المرحلة",
        "state": "المرحلة",
        "count": "العدد",
        "aging": "أقدمية الملفات الجارية (أيام منذ الإيداع)",
        "overdue_aging": "مدة التأخر (أيام بعد حلول الأجل)",
        "days": "الأيام",
        "overdue_by_respondent": "الملفات المتأخرة حسب الإدارة المشتكى بها",
        "overdue_by_region": "الملفات المتأخرة حسب الجهة",
        "overdue_by_level": "الملفات المتأخرة حسب مستوى التصعيد",
        "level": "المستوى",
        "level_zero": "دون تصعيد",
        "monthly": "التطور الشهري",
        "month": "الشهر",
        "filed": "المودعة",
        "answered": "المجاب عنها",
        "overdue_month_end": "المتأخرة في نهاية الشهر",
        "escalations": "التصعيدات",
        "escalated": "لائحة الملفات المتأخرة",
        "escalated_shown": "{shown} من أصل {total}، من الأقدم تأخرا إلى الأحدث",
        "reference": "المرجع",
        "respondent": "الإدارة المشتكى بها",
        "region": "الجهة",
        "due_at": "تاريخ حلول الأجل",
        "days_overdue": "أيام التأخر",
        "unassigned": "غير محدد",
        "not_available": "غير متوفر",
        "empty": "لا توجد ملفات.",
        "footnote": (
            "أرقام محسوبة انطلاقا من سجل الملفات في التاريخ المذكور. الأيام أيام تقويمية محلية، "
            "باستثناء أيام العمل التي لا تحتسب فيها عطلة نهاية الأسبوع والأعياد."
        ),
        "decimal_separator": ",",
        "group_separator": "\u202f",
        "percent": "{value}\u00a0%",
        "colon": ": ",
    },
    "en": {
        "title": "Escalation report",
        "as_of": "As of",
        "timezone": "Time zone",
        "deadline": "Deadline",
        "all_deadlines": "all deadlines",
        "scope": "Scope",
        "all_dossiers": "all dossiers",
        "filter_respondent": "Respondent",
        "filter_region": "Region",
        "filter_workflow": "Workflow",
        "filed_from": "Filed from",
        "filed_to": "Filed to",
        "summary": "Summary",
        "open_total": "Open dossiers",
        "overdue_total": "Overdue dossiers",
        "answered_on_time": "Answered on time",
        "answered_late": "Answered late",
        "on_time_rate": "On-time answer rate",
        "median_answer_days": "Median answer time (days)",
        "p90_answer_days": "Answer time, 90th percentile (days)",
        "median_answer_working_days": "Median answer time (working days)",
        "p90_answer_working_days": "Answer time, 90th percentile (working days)",
        "estimated_holiday_deadlines": "Open deadlines resting on an estimated holiday",
        "open_by_state": "Open dossiers by state",
        "state": "State",
        "count": "Count",
        "aging": "Age of open dossiers (days since filing)",
        "overdue_aging": "Days overdue",
        "days": "Days",
        "overdue_by_respondent": "Overdue dossiers by respondent",
        "overdue_by_region": "Overdue dossiers by region",
        "overdue_by_level": "Overdue dossiers by escalation level",
        "level": "Level",
        "level_zero": "0 (not escalated)",
        "monthly": "Monthly figures",
        "month": "Month",
        "filed": "Filed",
        "answered": "Answered",
        "overdue_month_end": "Overdue at month end",
        "escalations": "Escalations",
        "escalated": "Overdue dossiers",
        "escalated_shown": "{shown} of {total}, most overdue first",
        "reference": "Reference",
        "respondent": "Respondent",
        "region": "Region",
        "due_at": "Due",
        "days_overdue": "Days overdue",
        "unassigned": "not set",
        "not_available": "n/a",
        "empty": "No dossiers.",
        "footnote": (
            "Figures recomputed from the dossiers' history as of the date shown. "
            "Days are local calendar days, except working days, which leave out weekends "
            "and public holidays."
        ),
        "decimal_separator": ".",
        "group_separator": ",",
        "percent": "{value}%",
        "colon": ": ",
    },
}

LANGUAGES = tuple(LABELS)


def labels_for(language: str) -> Mapping[str, str]:
    """Return the labels of ``language``; raise :class:`InvalidInput` for an unknown one."""
    try:
        return LABELS[language]
    except KeyError:
        raise InvalidInput(
            f"unknown report language {language!r}; use one of {', '.join(LANGUAGES)}"
        ) from None
